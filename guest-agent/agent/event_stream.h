// EventStream: the agent's outbound event connection (guest -> host port 10001). Queues
// framed events, keeps log lines bounded (drops count into a kDropped event), and reconnects
// with backoff whenever the connection breaks (e.g. vsock transport reset after restore).
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <string>

#include "common/protocol/messages.h"
#include "common/unique_fd.h"
#include "guest-agent/agent/endpoint.h"
#include "common/event_loop/event_loop.h"

namespace kiln::agent {

struct EventStreamLimits {
  std::size_t max_log_events = 4096;
  std::size_t max_log_bytes = 4 * 1024 * 1024;
  std::uint64_t backoff_min_ms = 10;
  std::uint64_t backoff_max_ms = 1000;
};

class EventStream {
 public:
  // hello() is called on every (re)connection to build the first frame.
  EventStream(EventLoop& loop, Endpoint target, EventStreamLimits limits,
              std::function<protocol::HelloEvent()> hello);
  ~EventStream();
  EventStream(const EventStream&) = delete;
  EventStream& operator=(const EventStream&) = delete;

  void start();

  // Each assigns the next seq. Log lines are dropped (and counted) when the buffer is full;
  // the other events are never dropped.
  // request: the invocation the line belongs to, "" when unknown (LogEvent::request_id).
  void log(protocol::LogStream stream, std::uint64_t ts_ns, std::string_view data, bool partial,
           std::string_view request = {});
  void ready(std::uint16_t port, std::uint64_t elapsed_ms);
  void not_ready(std::uint16_t port, std::uint64_t waited_ms, std::string message);
  void exit(std::uint64_t pid, bool signaled, int code);

  // Drops the current connection and reconnects now (after a snapshot restore).
  void reconnect_now();
  // Calls done() once the queue is empty or after deadline_ms, whichever is first.
  void flush(std::uint64_t deadline_ms, std::function<void()> done);

  std::uint64_t next_seq() const { return next_seq_; }
  std::uint64_t dropped_total() const { return dropped_total_; }
  bool connected() const { return state_ == State::kConnected; }

 private:
  enum class State { kIdle, kConnecting, kConnected, kBackoff };
  struct Pending {
    std::string frame;
    bool is_log;
  };
  void enqueue(Result<std::string> frame, bool is_log);
  void try_connect();
  void on_socket(std::uint32_t events);
  void disconnect_and_retry();
  void pump();
  void update_interest();
  void check_flush();

  EventLoop& loop_;
  Endpoint target_;
  EventStreamLimits limits_;
  std::function<protocol::HelloEvent()> hello_;
  UniqueFd fd_;
  State state_ = State::kIdle;
  std::string hello_frame_;  // sent before the queue on each connection
  std::size_t hello_offset_ = 0;
  std::deque<Pending> queue_;
  std::size_t front_offset_ = 0;  // bytes of queue_.front() already written
  std::size_t log_events_ = 0;
  std::size_t log_bytes_ = 0;
  std::uint64_t next_seq_ = 1;
  std::uint64_t dropped_pending_ = 0;
  std::uint64_t dropped_total_ = 0;
  std::uint64_t backoff_ms_ = 0;
  EventLoop::TimerId retry_timer_ = 0;
  std::function<void()> flush_done_;
  EventLoop::TimerId flush_timer_ = 0;
  bool want_out_ = false;
};

}  // namespace kiln::agent
