// ScheduleBook: per function, each schedule's next firing; due() hands out those that came.
#include "src/schedule/schedule_book.h"

#include <algorithm>
#include <utility>

namespace kiln::kilnd::schedule {

void ScheduleBook::set(const std::string& key, std::vector<Schedule> schedules, std::int64_t anchor_s,
                       std::int64_t now_s) {
  if (schedules.empty()) {
    remove(key);
    return;
  }
  Function f;
  f.anchor_s = anchor_s;
  for (auto& s : schedules) {
    Entry e{std::move(s), std::nullopt};
    e.next_s = next_fire(e.schedule, anchor_s, now_s);
    f.entries.push_back(std::move(e));
  }
  entries_[key] = std::move(f);
}

void ScheduleBook::remove(const std::string& key) { entries_.erase(key); }

std::vector<Firing> ScheduleBook::due(std::int64_t now_s) {
  std::vector<Firing> out;
  for (auto& [key, f] : entries_) {
    for (std::size_t i = 0; i < f.entries.size(); ++i) {
      Entry& e = f.entries[i];
      if (!e.next_s || *e.next_s > now_s) continue;
      out.push_back(Firing{key, i, e.schedule.expression, *e.next_s});
      e.next_s = next_fire(e.schedule, f.anchor_s, now_s);
    }
  }
  std::stable_sort(out.begin(), out.end(),
                   [](const Firing& a, const Firing& b) { return a.scheduled_s < b.scheduled_s; });
  return out;
}

std::optional<std::int64_t> ScheduleBook::next_wake() const {
  std::optional<std::int64_t> best;
  for (const auto& [key, f] : entries_) {
    for (const Entry& e : f.entries) {
      if (e.next_s && (!best || *e.next_s < *best)) best = e.next_s;
    }
  }
  return best;
}

}  // namespace kiln::kilnd::schedule
