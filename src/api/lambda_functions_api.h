// LambdaFunctionsApi: AWS Lambda's control plane for image functions (API 2015-03-31):
// CreateFunction, GetFunction, GetFunctionConfiguration, ListFunctions, UpdateFunctionCode,
// UpdateFunctionConfiguration, DeleteFunction. Lambda's view of kiln's function resource: the
// same records, deploys (through FunctionsApi::deploy: quotas, the owner) and tenants (the
// caller's namespace); answers and errors in Lambda's dialect (x-amzn-ErrorType, x-amzn-RequestId).
#pragma once

#include <string>
#include <utility>
#include <variant>

#include "src/api/dispatcher.h"
#include "src/api/functions_api.h"
#include "src/functions/function_table.h"

namespace kiln::kilnd::api {

class LambdaFunctionsApi {
 public:
  // `functions`: kiln's view of the same table (it holds references only), whose deploy both views use.
  LambdaFunctionsApi(functions::FunctionTable& table, FunctionsApi functions)
      : table_(table), functions_(std::move(functions)) {}

  // The routes' {function} parameter (a name or an ARN; the dispatcher checks only {name}).
  static constexpr const char* kParam = "function";

  server::Response create(const server::Request& req, const Call& call);
  server::Response get(const server::Request& req, const Call& call);
  server::Response get_configuration(const server::Request& req, const Call& call);
  server::Response list(const server::Request& req, const Call& call) const;
  server::Response update_code(const server::Request& req, const Call& call);
  server::Response update_configuration(const server::Request& req, const Call& call);
  server::Response remove(const server::Request& req, const Call& call);

 private:
  // The caller's function that {function} (with ?Qualifier) names, or Lambda's refusal.
  std::variant<const functions::Function*, server::Response> find(const server::Request& req, const Call& call);
  // Deploys `config` as the caller's and answers its FunctionConfiguration with `status`.
  server::Response deploy(const server::Request& req, const Call& call, registry::FunctionConfig config,
                          http::status status);

  functions::FunctionTable& table_;
  FunctionsApi functions_;
};

}  // namespace kiln::kilnd::api
