// Fuzz target: timer trigger expressions (src/schedule/schedule.h). Input: the expression's
// bytes. Whatever parses must give a next firing strictly after "now" (or none), twice the same.
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "src/schedule/schedule.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace kiln::kilnd::schedule;
  ParseOptions o;
  o.allow_seconds = true;
  auto s = parse(std::string_view(reinterpret_cast<const char*>(data), size), o);
  if (!s.ok()) return 0;
  constexpr std::int64_t kNow = 1796648400;  // 2026-12-07 13:00 UTC
  auto a = next_fire(*s, kNow - 12345, kNow);
  auto b = next_fire(*s, kNow - 12345, kNow);
  if (a != b || (a && *a <= kNow)) std::abort();
  if (s->cron && a && *a % 60 != 0) std::abort();
  return 0;
}
