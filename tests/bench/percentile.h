// The benchmarks' one percentile: nearest rank of a series (p in [0, 100]), 0 for an empty one.
#pragma once

#include <algorithm>
#include <cstddef>
#include <vector>

namespace kiln::bench {

inline double percentile(std::vector<double> v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  const auto rank = static_cast<std::size_t>(p / 100.0 * static_cast<double>(v.size()) + 0.999999);
  return v[std::clamp<std::size_t>(rank, 1, v.size()) - 1];
}

}  // namespace kiln::bench
