// Reading a runtime's function error from the guest's answer.
#include "src/invoke/function_error.h"

namespace kiln::kilnd::invoke {
namespace {

constexpr std::size_t kMaxMessageFromText = 4096;  // a non-JSON error body, as errorMessage

std::string string_member(const nlohmann::json& j, const char* key) {
  auto it = j.find(key);
  return it != j.end() && it->is_string() ? it->get<std::string>() : std::string();
}

}  // namespace

bool has_function_error(const GuestResponse& guest) { return guest.find(kFunctionErrorHeader) != guest.end(); }

std::optional<FunctionError> function_error_of(const GuestResponse& guest) {
  auto field = guest.find(kFunctionErrorHeader);
  if (field == guest.end()) return std::nullopt;
  std::string header(sv(field->value()));
  FunctionError e;
  nlohmann::json body = nlohmann::json::parse(guest.body(), nullptr, false);
  if (!body.is_discarded() && body.is_object()) {
    e.type = string_member(body, "errorType");
    e.message = string_member(body, "errorMessage");
    e.body = std::move(body);
  } else {
    e.message = guest.body().substr(0, kMaxMessageFromText);
    e.body = nlohmann::json::object();
  }
  if (e.type.empty()) e.type = header.empty() || header == "Unhandled" || header == "Handled" ? "Unhandled" : header;
  if (!e.body.contains("errorType")) e.body["errorType"] = e.type;
  if (!e.body.contains("errorMessage")) e.body["errorMessage"] = e.message;
  return e;
}

nlohmann::json kiln_function_error_body(const FunctionError& error, std::string_view request_id) {
  return {{"error", "function_error"},
          {"message", error.message.empty() ? error.type : error.type + ": " + error.message},
          {"request_id", request_id},
          {"function_error", error.body}};
}

}  // namespace kiln::kilnd::invoke
