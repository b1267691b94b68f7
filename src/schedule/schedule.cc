// Schedule expressions (schedule.h): a strict parser and the next firing, in UTC.
#include "src/schedule/schedule.h"

#include <array>
#include <cctype>
#include <charconv>
#include <chrono>

namespace kiln::kilnd::schedule {
namespace {

namespace chr = std::chrono;

constexpr std::size_t kMaxExpression = 256;
constexpr int kFirstYear = 1970, kLastYear = 2199;
constexpr std::int64_t kMaxRateValue = 1000000;

std::string_view trim(std::string_view s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front()))) s.remove_prefix(1);
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.remove_suffix(1);
  return s;
}

std::vector<std::string_view> split(std::string_view s, char sep) {
  std::vector<std::string_view> out;
  std::size_t start = 0;
  for (std::size_t i = 0; i <= s.size(); ++i) {
    if (i == s.size() || s[i] == sep) {
      out.push_back(s.substr(start, i - start));
      start = i + 1;
    }
  }
  return out;
}

std::vector<std::string_view> words(std::string_view s) {
  std::vector<std::string_view> out;
  std::size_t i = 0;
  while (i < s.size()) {
    while (i < s.size() && std::isspace(static_cast<unsigned char>(s[i]))) ++i;
    std::size_t j = i;
    while (j < s.size() && !std::isspace(static_cast<unsigned char>(s[j]))) ++j;
    if (j > i) out.push_back(s.substr(i, j - i));
    i = j;
  }
  return out;
}

// Plain decimal digits only (no sign, no spaces), at most 9 of them.
std::optional<int> number(std::string_view s) {
  if (s.empty() || s.size() > 9) return std::nullopt;
  int v = 0;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || p != s.data() + s.size()) return std::nullopt;
  return v;
}

// One cron field's values: lo..hi, names[i] standing for lo + i (case-insensitive).
struct Field {
  const char* name;
  int lo, hi;
  const std::array<const char*, 12>* names = nullptr;
};

constexpr std::array<const char*, 12> kMonthNames = {"JAN", "FEB", "MAR", "APR", "MAY", "JUN",
                                                     "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"};
constexpr std::array<const char*, 12> kDayNames = {"SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"};

Error field_error(const Field& f, std::string_view text, const std::string& why) {
  return make_error("cron: " + std::string(f.name) + ": '" + std::string(text) + "' " + why);
}

Result<int> value(const Field& f, std::string_view text) {
  if (auto n = number(text)) {
    if (*n < f.lo || *n > f.hi) {
      return field_error(f, text, "is out of range " + std::to_string(f.lo) + "-" + std::to_string(f.hi));
    }
    return *n;
  }
  if (f.names != nullptr && text.size() == 3) {
    for (int i = 0; i < 12 && (*f.names)[i] != nullptr; ++i) {
      const char* n = (*f.names)[i];
      bool same = true;
      for (int k = 0; k < 3; ++k) same = same && std::toupper(static_cast<unsigned char>(text[k])) == n[k];
      if (same) return f.lo + i;
    }
  }
  return field_error(f, text, "is not a value of this field");
}

// `*`, V, A-B, A/S, A-B/S, */S, and comma lists of them: the values as flags lo..hi.
Result<std::vector<bool>> values(const Field& f, std::string_view text) {
  std::vector<bool> on(static_cast<std::size_t>(f.hi) + 1, false);
  for (std::string_view item : split(text, ',')) {
    if (item.empty()) return field_error(f, text, "has an empty list item");
    int step = 1;
    std::string_view range = item;
    if (auto slash = item.find('/'); slash != std::string_view::npos) {
      auto s = number(item.substr(slash + 1));
      if (!s || *s < 1 || *s > f.hi) return field_error(f, item, "has a bad step");
      step = *s;
      range = item.substr(0, slash);
    }
    int a = f.lo, b = f.hi;
    if (range != "*") {
      if (auto dash = range.find('-'); dash != std::string_view::npos) {
        KILN_ASSIGN_OR_RETURN(a, value(f, range.substr(0, dash)));
        KILN_ASSIGN_OR_RETURN(b, value(f, range.substr(dash + 1)));
        if (a > b) return field_error(f, item, "is a range that ends before it starts");
      } else {
        KILN_ASSIGN_OR_RETURN(a, value(f, range));
        if (step == 1) b = a;  // A/S runs from A to the field's end
      }
    }
    for (int v = a; v <= b; v += step) on[static_cast<std::size_t>(v)] = true;
  }
  return on;
}

template <std::size_t N>
Status set_bits(std::bitset<N>& bits, const Field& f, std::string_view text, int offset = 0) {
  KILN_ASSIGN_OR_RETURN(std::vector<bool> on, values(f, text));
  for (int v = f.lo; v <= f.hi; ++v) {
    if (on[static_cast<std::size_t>(v)]) bits.set(static_cast<std::size_t>(v - offset));
  }
  return ok_status();
}

constexpr Field kMinute{"minutes", 0, 59};
constexpr Field kHour{"hours", 0, 23};
constexpr Field kDom{"day-of-month", 1, 31};
constexpr Field kMonth{"month", 1, 12, &kMonthNames};
constexpr Field kDow{"day-of-week", 1, 7, &kDayNames};
constexpr Field kYear{"year", kFirstYear, kLastYear};

Status parse_dom(Cron& c, std::string_view t) {
  if (t == "?") {
    c.dom_any = true;
    return ok_status();
  }
  if (t == "L") {
    c.last_day = true;
    return ok_status();
  }
  if (t.size() >= 2 && t.back() == 'W') {
    KILN_ASSIGN_OR_RETURN(c.nearest_weekday_to, value(kDom, t.substr(0, t.size() - 1)));
    return ok_status();
  }
  return set_bits(c.days, kDom, t);
}

Status parse_dow(Cron& c, std::string_view t) {
  if (t == "?") {
    c.dow_any = true;
    return ok_status();
  }
  if (t == "L") {  // the week's last day
    c.weekdays.set(6);
    return ok_status();
  }
  if (t.size() >= 2 && t.back() == 'L') {
    KILN_ASSIGN_OR_RETURN(int d, value(kDow, t.substr(0, t.size() - 1)));
    c.last_weekday = d - 1;
    return ok_status();
  }
  if (auto hash = t.find('#'); hash != std::string_view::npos) {
    KILN_ASSIGN_OR_RETURN(int d, value(kDow, t.substr(0, hash)));
    auto k = number(t.substr(hash + 1));
    if (!k || *k < 1 || *k > 5) return field_error(kDow, t, "wants N#K with K 1-5");
    c.nth_weekday = d - 1;
    c.nth = *k;
    return ok_status();
  }
  return set_bits(c.weekdays, kDow, t, 1);
}

Result<Schedule> parse_rate(std::string_view inner, const ParseOptions& o, Schedule s) {
  const auto w = words(inner);
  if (w.size() != 2) return make_error("rate: want rate(VALUE UNIT), e.g. rate(5 minutes)");
  auto v = number(w[0]);
  if (!v || *v < 1 || *v > kMaxRateValue) {
    return make_error("rate: '" + std::string(w[0]) + "' is not a whole number from 1 to " + std::to_string(kMaxRateValue));
  }
  struct Unit {
    const char* singular;
    std::int64_t seconds;
  };
  static constexpr Unit kUnits[] = {{"minute", 60}, {"hour", 3600}, {"day", 86400}, {"second", 1}};
  for (const Unit& u : kUnits) {
    const std::string one = u.singular, many = one + "s";
    if (w[1] != one && w[1] != many) continue;
    if ((*v == 1) != (w[1] == one)) {
      return make_error("rate: '" + std::string(w[1]) + "' with " + std::to_string(*v) + ": write " +
                        (*v == 1 ? one : many));
    }
    if (u.seconds == 1 && !o.allow_seconds) return make_error("rate: seconds are not a unit here (minute, hour, day)");
    s.rate = Rate{*v * u.seconds};
    return s;
  }
  return make_error("rate: unknown unit '" + std::string(w[1]) + "' (minute(s), hour(s), day(s))");
}

Result<Schedule> parse_cron(std::string_view inner, Schedule s) {
  const auto f = words(inner);
  if (f.size() != 6) {
    return make_error("cron: want 6 fields (minutes hours day-of-month month day-of-week year), got " + std::to_string(f.size()));
  }
  Cron c;
  KILN_TRY(set_bits(c.minutes, kMinute, f[0]));
  KILN_TRY(set_bits(c.hours, kHour, f[1]));
  KILN_TRY(parse_dom(c, f[2]));
  KILN_TRY(set_bits(c.months, kMonth, f[3]));
  KILN_TRY(parse_dow(c, f[4]));
  KILN_TRY(set_bits(c.years, kYear, f[5], kFirstYear));
  if (c.dom_any == c.dow_any) return make_error("cron: exactly one of day-of-month and day-of-week must be '?'");
  s.cron = c;
  return s;
}

// Whether calendar day `d` matches the expression's day fields.
bool day_matches(const Cron& c, chr::sys_days d) {
  const chr::year_month_day ymd{d};
  const int y = static_cast<int>(ymd.year());
  if (y < kFirstYear || y > kLastYear || !c.years.test(static_cast<std::size_t>(y - kFirstYear))) return false;
  if (!c.months.test(static_cast<unsigned>(ymd.month()))) return false;
  const unsigned day = static_cast<unsigned>(ymd.day());
  const unsigned last = static_cast<unsigned>(chr::year_month_day_last{ymd.year(), chr::month_day_last{ymd.month()}}.day());
  if (c.dow_any) {
    if (c.last_day) return day == last;
    if (c.nearest_weekday_to != 0) {
      unsigned n = static_cast<unsigned>(c.nearest_weekday_to);
      if (n > last) return false;
      const unsigned wd = chr::weekday{chr::sys_days{ymd.year() / ymd.month() / chr::day{n}}}.c_encoding();
      if (wd == 6) n = n == 1 ? 3 : n - 1;          // Saturday: Friday, or Monday the 3rd
      else if (wd == 0) n = n == last ? n - 2 : n + 1;  // Sunday: Monday, or Friday before the last
      return day == n;
    }
    return c.days.test(day);
  }
  const int wd = static_cast<int>(chr::weekday{d}.c_encoding());
  if (c.last_weekday >= 0) return wd == c.last_weekday && day + 7 > last;
  if (c.nth_weekday >= 0) return wd == c.nth_weekday && static_cast<int>((day - 1) / 7 + 1) == c.nth;
  return c.weekdays.test(static_cast<std::size_t>(wd));
}

}  // namespace

Result<Schedule> parse(std::string_view expression, const ParseOptions& options) {
  const std::string_view e = trim(expression);
  if (e.size() > kMaxExpression) return make_error("schedule: longer than " + std::to_string(kMaxExpression) + " characters");
  Schedule s;
  s.expression = std::string(e);
  auto inner = [&](std::string_view prefix) -> std::optional<std::string_view> {
    if (e.size() < prefix.size() + 1 || e.substr(0, prefix.size()) != prefix || e.back() != ')') return std::nullopt;
    return e.substr(prefix.size(), e.size() - prefix.size() - 1);
  };
  if (auto r = inner("rate(")) return parse_rate(*r, options, std::move(s));
  if (auto c = inner("cron(")) return parse_cron(*c, std::move(s));
  return make_error("schedule: want rate(VALUE UNIT) or cron(MIN HOUR DOM MONTH DOW YEAR), got '" + s.expression + "'");
}

std::optional<std::int64_t> next_fire(const Schedule& s, std::int64_t anchor_s, std::int64_t after_s) {
  if (s.rate) {
    const std::int64_t p = s.rate->period_s;
    if (p <= 0) return std::nullopt;
    const std::int64_t k = after_s < anchor_s ? 1 : (after_s - anchor_s) / p + 1;
    return anchor_s + k * p;
  }
  if (!s.cron) return std::nullopt;
  const Cron& c = *s.cron;
  // The first whole minute after `after_s`, then day by day until the last year.
  const std::int64_t start = (after_s >= 0 ? after_s / 60 : (after_s - 59) / 60) * 60 + 60;
  const chr::sys_days first_day = chr::floor<chr::days>(chr::sys_seconds{chr::seconds{start}});
  const chr::sys_days end_day = chr::sys_days{chr::year{kLastYear + 1} / chr::January / 1};
  const std::int64_t start_in_day = start - chr::sys_seconds{first_day}.time_since_epoch().count();
  for (chr::sys_days d = std::max(first_day, chr::sys_days{chr::year{kFirstYear} / chr::January / 1}); d < end_day;
       d += chr::days{1}) {
    const chr::year_month_day ymd{d};
    const int y = static_cast<int>(ymd.year());
    if (!c.years.test(static_cast<std::size_t>(y - kFirstYear)) || !c.months.test(static_cast<unsigned>(ymd.month()))) {
      // Skip to the next month's first day.
      const chr::year_month next = chr::year_month{ymd.year(), ymd.month()} + chr::months{1};
      d = chr::sys_days{next / 1} - chr::days{1};
      continue;
    }
    if (!day_matches(c, d)) continue;
    const std::int64_t from = d == first_day ? start_in_day : 0;
    for (int h = static_cast<int>(from / 3600); h < 24; ++h) {
      if (!c.hours.test(static_cast<std::size_t>(h))) continue;
      const int m0 = h == from / 3600 ? static_cast<int>((from % 3600) / 60) : 0;
      for (int m = m0; m < 60; ++m) {
        if (c.minutes.test(static_cast<std::size_t>(m))) {
          return chr::sys_seconds{d}.time_since_epoch().count() + h * 3600 + m * 60;
        }
      }
    }
  }
  return std::nullopt;
}

}  // namespace kiln::kilnd::schedule
