// Timer triggers (issue 22): schedule expressions in Lambda/EventBridge syntax and when they
// fire next, in UTC. Pure: no clock, no I/O (the caller passes "now" and the anchor).
//   rate(VALUE UNIT)  UNIT minute(s) | hour(s) | day(s), singular exactly when VALUE is 1;
//                     fires every VALUE UNITs from its anchor (when the schedule was set);
//                     `second(s)` only when the parser is told to allow it (tests).
//   cron(MIN HOUR DAY-OF-MONTH MONTH DAY-OF-WEEK YEAR)
//     MIN 0-59, HOUR 0-23, DAY-OF-MONTH 1-31 (L: last day, NW: the weekday nearest N),
//     MONTH 1-12 or JAN-DEC, DAY-OF-WEEK 1-7 or SUN-SAT (1 = SUN; NL: the month's last such
//     day; N#K: its K-th), YEAR 1970-2199; each field `*`, a value, A-B, A/STEP, *\/STEP or a
//     comma list of those; exactly one of DAY-OF-MONTH and DAY-OF-WEEK is `?`.
#pragma once

#include <bitset>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"

namespace kiln::kilnd::schedule {

struct ParseOptions {
  bool allow_seconds = false;  // rate(N second(s)): for tests only
};

struct Rate {
  std::int64_t period_s = 0;
};

struct Cron {
  std::bitset<60> minutes;
  std::bitset<24> hours;
  std::bitset<13> months;  // 1-12
  std::bitset<230> years;  // year - 1970, 1970-2199
  // Day of month: a set of days, or L (last), or NW (nearest weekday); unused when `?`.
  bool dom_any = false;  // `?`: the day-of-week field decides
  std::bitset<32> days;  // 1-31
  bool last_day = false;
  int nearest_weekday_to = 0;  // 1-31, 0: not used
  // Day of week (0 = SUN .. 6 = SAT); unused when `?`.
  bool dow_any = false;
  std::bitset<7> weekdays;
  int last_weekday = -1;    // NL: the month's last weekday N-1
  int nth_weekday = -1;     // N#K: weekday N-1 ...
  int nth = 0;              // ... its K-th (1-5) in the month
};

struct Schedule {
  std::string expression;  // as given, trimmed
  std::optional<Rate> rate;
  std::optional<Cron> cron;
};

// Errors name the field and the offending text ("cron: day-of-week: 8 is out of range 1-7").
// Expressions are at most 256 characters.
Result<Schedule> parse(std::string_view expression, const ParseOptions& options = {});

// The first firing strictly after `after_s` (Unix seconds, UTC). Rates fire at anchor_s + k *
// period (k >= 1); cron expressions at whole minutes. nullopt: it never fires again (its years are
// past, or no day ever matches, e.g. cron(0 0 30 2 ? *)).
std::optional<std::int64_t> next_fire(const Schedule& s, std::int64_t anchor_s, std::int64_t after_s);

}  // namespace kiln::kilnd::schedule
