// FakeBackend: a VmBackend for unit tests. Instances do nothing until the test says so
// (ready, end, log); connect() hands out one end of a socketpair whose other end is served by
// a test-provided HTTP handler on the test's io_context.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "src/pool/vm_backend.h"

namespace kiln::kilnd::test {

class FakeBackend : public pool::VmBackend, public pool::WarmStarts {
 public:
  // Serves one connection (the guest side of the socketpair).
  using Server = std::function<void(local::socket guest_side)>;

  explicit FakeBackend(asio::io_context* io = nullptr) : io_(io) {}

  std::unique_ptr<pool::VmInstance> start(const pool::InstanceSpec& spec, pool::InstanceCallbacks cb) override;
  // Warm starts: offered unless `warm` is false (a backend without them).
  pool::WarmStarts* warm_starts() override { return warm ? this : nullptr; }
  const pool::WarmStarts* warm_starts() const override { return warm ? this : nullptr; }
  bool warm = true;
  // Records the hints: prepared[owner] = the announced next instance's id ("" once forgotten).
  void prepare(std::uint64_t owner, const pool::InstanceSpec& next) override { prepared[owner] = next.instance_id; }
  void forget(std::uint64_t owner) override { prepared[owner] = ""; }
  pool::SnapshotStats snapshot_stats() const override { return stats; }
  std::map<std::uint64_t, std::string> prepared;
  pool::SnapshotStats stats;  // what snapshot_stats() reports

  // Test controls (by instance id).
  void ready(const std::string& id);
  void end(const std::string& id, const std::string& reason);
  // A guest output line; request_id: kiln-init's tag (LogEvent::request_id); ts_ns: its stamp.
  void log(const std::string& id, const std::string& line, const std::string& request_id = "",
           std::uint64_t ts_ns = 0);
  void answer_checks(const std::string& id, bool healthy);  // completes pending checks
  // With `hold_stops`, a stop() stays in progress (the instance may still log, as a real one
  // does while it shuts down) until finish_stop(id).
  bool hold_stops = false;
  void finish_stop(const std::string& id);

  std::vector<std::string> started() const { return started_; }
  std::vector<std::string> stopped() const { return stopped_; }
  std::vector<std::string> live() const;  // started, not destroyed
  std::map<std::string, pool::InstanceSpec> specs;
  std::size_t pending_checks(const std::string& id) const;

  Server server;  // used by connect(); none = connect fails
  bool auto_ready = false;  // instances report ready right after start (posted to io)
  bool fail_connect = false;

 private:
  class Fake;
  friend class Fake;
  struct State {
    pool::InstanceCallbacks cb;
    std::vector<std::function<void(bool)>> checks;
    bool destroyed = false;
    bool stopped = false;
    std::function<void()> stop_done;  // a held stop (hold_stops)
  };
  asio::io_context* io_;
  std::map<std::string, std::shared_ptr<State>> states_;
  std::vector<std::string> started_;
  std::vector<std::string> stopped_;
};

}  // namespace kiln::kilnd::test
