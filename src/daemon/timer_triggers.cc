// Timer triggers: the schedule book over the wall clock, one steady timer, and firings run
// through the invocation service like any event invocation.
#include "src/daemon/timer_triggers.h"

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <utility>
#include <vector>

#include "common/clock.h"
#include "src/functions/lambda_shapes.h"
#include "src/invoke/guest_request.h"

namespace kiln::kilnd::daemon {
namespace {

std::int64_t wall_s() { return static_cast<std::int64_t>(kiln::realtime_ns() / 1000000000ull); }

std::string refusal_text(const invoke::Refusal& r) {
  switch (r.kind) {
    case invoke::RefusalKind::kNotFound: return "the function is gone";
    case invoke::RefusalKind::kStopping: return "kilnd is shutting down";
    case invoke::RefusalKind::kNotReady:
      return std::string("image ") + registry::image_state_name(r.image_state) +
             (r.image_reason.empty() ? "" : " (" + r.image_reason + ")");
    case invoke::RefusalKind::kPayloadTooLarge: return "payload too large";
    case invoke::RefusalKind::kQuota: return "quota " + r.quota + ": " + r.message;
  }
  return "refused";
}

}  // namespace

TimerTriggers::TimerTriggers(asio::io_context& io, functions::FunctionTable& table,
                             invoke::InvocationService& invocations, metrics::Metrics& metrics)
    : io_(io), table_(table), invocations_(invocations), metrics_(metrics), timer_(io) {}

TimerTriggers::~TimerTriggers() { alive_.reset(); }

void TimerTriggers::update(const std::string& key, const registry::FunctionRecord* record) {
  std::vector<schedule::Schedule> schedules;
  if (record != nullptr) {
    for (const std::string& text : record->config.schedules) {
      // Stored configs were validated on deploy and on load (seconds allowed there too).
      if (auto s = schedule::parse(text, {.allow_seconds = true}); s.ok()) schedules.push_back(std::move(*s));
    }
  }
  if (schedules.empty()) {
    book_.remove(key);
    targets_.erase(key);
  } else {
    targets_[key] = Target{record->tenant, record->config.name};
    book_.set(key, std::move(schedules), static_cast<std::int64_t>(record->updated_ms / 1000), wall_s());
  }
  arm();
}

void TimerTriggers::stop() {
  stopped_ = true;
  timer_.cancel();
}

void TimerTriggers::arm() {
  if (stopped_) return;
  auto next = book_.next_wake();
  if (!next) {
    timer_.cancel();
    return;
  }
  // The book counts wall-clock seconds; the timer waits on the steady clock until that second.
  const std::int64_t now_ms = static_cast<std::int64_t>(kiln::realtime_ns() / 1000000ull);
  timer_.expires_after(std::chrono::milliseconds(std::max<std::int64_t>(0, *next * 1000 - now_ms)));
  timer_.async_wait([this, alive = std::weak_ptr<bool>(alive_)](const beast::error_code& ec) {
    if (ec || alive.expired() || stopped_) return;
    for (const schedule::Firing& f : book_.due(wall_s())) fire(f);
    arm();
  });
}

void TimerTriggers::fire(const schedule::Firing& firing) {
  auto t = targets_.find(firing.key);
  if (t == targets_.end()) return;
  const std::string when = functions::lambda_event_time(firing.scheduled_s);
  const std::string head = "schedule " + firing.expression + " fired for " + when + ": ";
  const metrics::Labels labels = {{"function", firing.key}};
  std::string body = functions::lambda_scheduled_event(t->second.tenant, t->second.name, firing.index,
                                                       invoke::new_request_id(), firing.scheduled_s);
  auto admitted = invocations_.admit(t->second.tenant, t->second.name, body.size());
  if (auto* refusal = std::get_if<invoke::Refusal>(&admitted)) {
    // Not retried: the next firing comes at its own time.
    metrics_.inc(metrics::kScheduleRefused, labels);
    table_.platform_log(firing.key, "", "", head + "not invoked: " + refusal_text(*refusal));
    return;
  }
  invoke::Admission& admission = std::get<invoke::Admission>(admitted);
  metrics_.inc(metrics::kScheduleFires, labels);
  table_.platform_log(firing.key, "", admission.meta.request_id, head + "invocation " + admission.meta.request_id);
  invoke::GuestRequest guest = invoke::make_event_request(admission.meta, body, "application/json");
  asio::co_spawn(io_, invocations_.run(std::move(admission), std::move(guest), "schedule"), asio::detached);
}

}  // namespace kiln::kilnd::daemon
