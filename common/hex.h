// "0x..." text of a number, for errors and logs about addresses and magics.
#pragma once

#include <cstdint>
#include <cstdio>
#include <string>

namespace kiln {

inline std::string hex(uint64_t v) {
  char buf[24];
  std::snprintf(buf, sizeof buf, "0x%llx", static_cast<unsigned long long>(v));
  return buf;
}

}  // namespace kiln
