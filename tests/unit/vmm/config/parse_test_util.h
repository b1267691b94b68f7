// Shared by the vmm config parser tests: a JSON literal and the error text of a failed parse.
#pragma once

#include <gtest/gtest.h>

#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "common/result.h"

namespace kiln::vmm::config::testing {

inline nlohmann::json J(std::string_view text) { return nlohmann::json::parse(text); }

// The error message of a failed parse (the test fails if it succeeded).
template <typename T>
std::string err(const Result<T>& r) {
  EXPECT_FALSE(r.ok());
  return r.ok() ? std::string() : r.error().message;
}

}  // namespace kiln::vmm::config::testing
