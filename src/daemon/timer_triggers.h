// TimerTriggers: kilnd's side of the functions' schedules. Follows the function table (set on
// load and deploy, dropped on delete), sleeps on one timer until the book's next firing, and
// runs each firing as an event invocation with EventBridge's Scheduled Event as its body.
#pragma once

#include <map>
#include <memory>
#include <string>

#include "src/functions/function_table.h"
#include "src/invoke/invocation_service.h"
#include "src/metrics/metrics.h"
#include "src/schedule/schedule_book.h"

namespace kiln::kilnd::daemon {

class TimerTriggers {
 public:
  TimerTriggers(asio::io_context& io, functions::FunctionTable& table, invoke::InvocationService& invocations,
                metrics::Metrics& metrics);
  ~TimerTriggers();
  TimerTriggers(const TimerTriggers&) = delete;
  TimerTriggers& operator=(const TimerTriggers&) = delete;

  // `key`'s record was loaded or deployed (its schedules replace the old ones, anchored at its
  // update time; nothing before now fires), or removed (record nullptr).
  void update(const std::string& key, const registry::FunctionRecord* record);
  void stop();  // kilnd is stopping: nothing fires any more

 private:
  struct Target {
    std::string tenant;
    std::string name;
  };
  void arm();
  void fire(const schedule::Firing& firing);

  asio::io_context& io_;
  functions::FunctionTable& table_;
  invoke::InvocationService& invocations_;
  metrics::Metrics& metrics_;
  schedule::ScheduleBook book_;
  std::map<std::string, Target> targets_;  // by key
  asio::steady_timer timer_;
  bool stopped_ = false;
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
};

}  // namespace kiln::kilnd::daemon
