// Fuzz target: kiln-vmm's REST API router (vmm/api/api_router.h) as a pure function over a
// fake VmController. Input: requests separated by 0x1e (ASCII record separator); each is
// "METHOD\nTARGET\nBODY". One router per input, so request sequences drive the state machine.
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "tests/fuzz/support/fuzz_input.h"
#include "tests/fuzz/support/quiet_logs.h"
#include "vmm/api/api_router.h"
#include "vmm/api/vm_controller.h"
#include "vmm/logging/metrics.h"

namespace kiln::fuzz {
namespace {

namespace api = vmm::api;
namespace config = vmm::config;

// Succeeds at everything and touches nothing outside the process (no logger or metrics files).
class FuzzController : public api::VmController {
 public:
  Status start_instance(const config::VmConfig&) override { return ok_status(); }
  Status send_ctrl_alt_del() override { return ok_status(); }
  Status pause() override { return ok_status(); }
  Status resume() override { return ok_status(); }
  Status create_snapshot(const config::SnapshotCreate&) override { return ok_status(); }
  Result<config::VmConfig> load_snapshot(const config::SnapshotLoad&) override {
    return config::VmConfig{};
  }
  Status update_network_interface(const std::string&, const std::optional<config::RateLimiterConfig>&,
                                  const std::optional<config::RateLimiterConfig>&) override {
    return ok_status();
  }
  Status configure_logger(const config::LoggerConfig&) override { return ok_status(); }
  Status configure_metrics(const config::MetricsConfig&) override { return ok_status(); }
  Status flush_metrics() override { return ok_status(); }
  nlohmann::json metrics() override { return nlohmann::json::object(); }
};

void check_response(const api::ApiResponse& r) {
  KILN_FUZZ_CHECK(r.status >= 200 && r.status <= 599);
  if (r.status == 204) KILN_FUZZ_CHECK(r.body.empty());
  // Every body is JSON (Firecracker's API never answers anything else).
  if (!r.body.empty()) KILN_FUZZ_CHECK(nlohmann::json::accept(r.body));
}

}  // namespace
}  // namespace kiln::fuzz

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace kiln::fuzz;
  quiet_vmm_logs();
  static kiln::vmm::logging::MetricsRegistry metrics;
  FuzzController controller;
  kiln::vmm::api::RouterOptions opts;
  opts.instance_id = "fuzz";
  opts.metrics = &metrics;
  kiln::vmm::api::ApiRouter router(controller, opts);

  std::string_view all(reinterpret_cast<const char*>(data), size);
  int requests = 0;
  while (!all.empty() && requests++ < 64) {
    size_t sep = all.find('\x1e');
    std::string_view req = all.substr(0, sep);
    all = sep == std::string_view::npos ? std::string_view{} : all.substr(sep + 1);
    size_t nl1 = req.find('\n');
    std::string_view method = req.substr(0, nl1);
    std::string_view rest = nl1 == std::string_view::npos ? std::string_view{} : req.substr(nl1 + 1);
    size_t nl2 = rest.find('\n');
    std::string_view target = rest.substr(0, nl2);
    std::string_view body = nl2 == std::string_view::npos ? std::string_view{} : rest.substr(nl2 + 1);
    check_response(router.handle(method, target, body));
  }
  (void)router.config();
  (void)router.state();
  return 0;
}
