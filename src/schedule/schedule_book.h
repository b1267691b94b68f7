// ScheduleBook: every function's timer triggers and when each fires next, over an injected
// clock (the caller passes "now" in Unix seconds). Pure: kilnd's timer asks next_wake() and due().
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "src/schedule/schedule.h"

namespace kiln::kilnd::schedule {

struct Firing {
  std::string key;  // the function's registry key
  std::size_t index = 0;  // which of its schedules
  std::string expression;
  std::int64_t scheduled_s = 0;  // when it was due (Unix seconds, UTC)
};

class ScheduleBook {
 public:
  // Sets (or replaces) `key`'s schedules, anchored at `anchor_s` (when they were set: a rate
  // fires at anchor + k * period). Firings at or before `now_s` never happen: nothing missed
  // while kilnd was down, or before an update, is replayed. No schedules: removes `key`.
  void set(const std::string& key, std::vector<Schedule> schedules, std::int64_t anchor_s, std::int64_t now_s);
  void remove(const std::string& key);

  // The firings whose time is at or before `now_s`, oldest first; each schedule then waits for
  // its next firing strictly after `now_s` (one firing per schedule per call: a late wake-up
  // does not fire a burst).
  std::vector<Firing> due(std::int64_t now_s);
  // The earliest pending firing, or nullopt when nothing will ever fire.
  std::optional<std::int64_t> next_wake() const;

  std::size_t size() const { return entries_.size(); }

 private:
  struct Entry {
    Schedule schedule;
    std::optional<std::int64_t> next_s;  // nullopt: never fires again
  };
  struct Function {
    std::vector<Entry> entries;
    std::int64_t anchor_s = 0;
  };
  std::map<std::string, Function> entries_;
};

}  // namespace kiln::kilnd::schedule
