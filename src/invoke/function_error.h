// A function error reported by a lambda-mode runtime (issue 18): kiln-init answers a Runtime API
// `/invocation/{id}/error` with the header X-Kiln-Function-Error (value "Unhandled" or the
// runtime's Lambda-Runtime-Function-Error-Type) and Lambda's error body {errorMessage,
// errorType, stackTrace}. Read here once; each API dialect renders it. Pure.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "src/invoke/invoker.h"

namespace kiln::kilnd::invoke {

inline constexpr const char* kFunctionErrorHeader = "X-Kiln-Function-Error";

struct FunctionError {
  std::string type;  // errorType, else the header's value when it names a type, else "Unhandled"
  std::string message;  // errorMessage ("" when the runtime sent none)
  // Lambda's error object: the runtime's body when it is a JSON object (kept as sent, so
  // stackTrace and any extra members pass through), else {errorType, errorMessage} built from
  // the header and the body's text.
  nlohmann::json body;
};

bool has_function_error(const GuestResponse& guest);
// nullopt when the guest's answer is not a function error (no X-Kiln-Function-Error header).
std::optional<FunctionError> function_error_of(const GuestResponse& guest);

// kiln's dialect (event and web invocations): {"error":"function_error","message":"TYPE:
// MESSAGE","request_id":ID,"function_error":BODY}, answered with 502 as function URLs do, with
// X-Kiln-Function-Error: Unhandled.
nlohmann::json kiln_function_error_body(const FunctionError& error, std::string_view request_id);

}  // namespace kiln::kilnd::invoke
