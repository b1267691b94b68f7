// After a snapshot restore every instance starts from the same kernel RNG state: mix fresh
// host entropy into the input pool (credited) and force the CRNG to reseed from it at once.
#pragma once

#include <string_view>

#include "common/result.h"

namespace kiln::agent {

// RNDADDENTROPY + RNDRESEEDCRNG on `device` (random(4)); needs CAP_SYS_ADMIN (PID 1 has it).
Status reseed_kernel_rng(std::string_view seed, const char* device = "/dev/urandom");

}  // namespace kiln::agent
