// FunctionsApi: the function resource: GET /v1/functions (list), PUT, GET and DELETE
// /v1/functions/{name}, and GET /v1/status (the caller's summary of them and of kilnd). A
// deploy is checked against the owner's quotas (max_functions, min_instances within
// max_instances) before the table takes it.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <variant>

#include "src/api/dispatcher.h"
#include "src/functions/function_table.h"
#include "src/invoke/invocation_service.h"
#include "src/tenants/authenticator.h"

namespace kiln::kilnd::api {

// What /v1/status says about kilnd itself.
struct DaemonInfo {
  std::string version;
  std::string state_dir;  // shown to admins only
  std::uint64_t started_ms = 0;  // wall clock
};

class FunctionsApi {
 public:
  FunctionsApi(functions::FunctionTable& table, const invoke::InvocationService& invocations,
               const tenants::Authenticator& auth, DaemonInfo info)
      : table_(table), invocations_(invocations), auth_(auth), info_(std::move(info)) {}

  server::Response list(const server::Request& req, const Call& call) const;
  server::Response get(const server::Request& req, const Call& call);
  server::Response put(const server::Request& req, const Call& call);
  server::Response remove(const server::Request& req, const Call& call);
  server::Response status(const server::Request& req, const Call& call) const;

  // A deploy through either view of a function (kiln's PUT, Lambda's CreateFunction and
  // Update*): one record, so one path, which each view's answers render.
  struct Deployed {
    const functions::Function* function = nullptr;
    bool created = false;
  };
  struct DeployRefusal {
    enum class Kind { kStopping, kInvalid, kQuota, kState };
    Kind kind = Kind::kInvalid;
    std::string field;  // kInvalid: the field; kQuota: the quota
    std::string message;
  };
  std::variant<Deployed, DeployRefusal> deploy(const Caller& caller, registry::FunctionConfig config);

 private:
  struct QuotaRefusal {
    std::string quota;
    std::string message;
  };
  // The quota that refuses a deploy of `config` into `tenant`, if one does.
  std::optional<QuotaRefusal> deploy_refusal(const std::string& tenant, const registry::FunctionConfig& config,
                                             bool created) const;

  functions::FunctionTable& table_;
  const invoke::InvocationService& invocations_;
  const tenants::Authenticator& auth_;
  DaemonInfo info_;
};

}  // namespace kiln::kilnd::api
