// Silences kiln-vmm's logger for fuzz runs (guest-caused warnings would flood the output);
// set KILN_FUZZ_LOG=1 to keep it.
#pragma once

#include <cstdlib>

#include "vmm/logging/logger.h"

namespace kiln::fuzz {

inline void quiet_vmm_logs() {
  static const bool done = [] {
    if (std::getenv("KILN_FUZZ_LOG") == nullptr) {
      vmm::logging::Logger::instance().set_level(vmm::logging::LogLevel::kOff);
    }
    return true;
  }();
  (void)done;
}

}  // namespace kiln::fuzz
