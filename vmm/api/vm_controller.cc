// Default VmController actions backed by the process-wide logger and metrics registry.
#include "vmm/api/vm_controller.h"

#include "vmm/logging/logger.h"
#include "vmm/logging/metrics.h"

namespace kiln::vmm::api {

Status VmController::configure_logger(const config::LoggerConfig& logger) {
  auto& log = logging::Logger::instance();
  if (logger.level) {
    KILN_ASSIGN_OR_RETURN(auto level, logging::parse_log_level(*logger.level));
    log.set_level(level);
  }
  if (logger.log_path) KILN_TRY(log.open_output(*logger.log_path));
  log.set_show_origin(logger.show_log_origin);
  return ok_status();
}

Status VmController::configure_metrics(const config::MetricsConfig& metrics) {
  return logging::MetricsRegistry::global().open_output(metrics.metrics_path);
}

Status VmController::flush_metrics() { return logging::MetricsRegistry::global().flush(); }

nlohmann::json VmController::metrics() { return logging::MetricsRegistry::global().to_json(); }

}  // namespace kiln::vmm::api
