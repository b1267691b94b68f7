// LogBudget: how many guest output lines (and bytes) each instance may add to its function's
// log: a token bucket per instance (a sustained rate plus a burst), so an instance flooding its
// output (or writing log frames to kilnd's event port itself, past kiln-init's own buffer)
// cannot flood the log store, its files and kilnd's loop; the lines over the budget are
// dropped and counted, and the count is reported once per interval (drops() -> a
// "[kiln] N log lines dropped" line of that instance). Single-threaded (kilnd's loop); the
// clock is the caller's (ns).
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace kiln::kilnd::logs {

struct LogBudgetOptions {
  std::uint64_t lines_per_s = 1000;
  std::uint64_t bytes_per_s = 256 * 1024;
  std::uint64_t burst_lines = 2000;  // the bucket's size (a full bucket for a new instance)
  std::uint64_t burst_bytes = 1024 * 1024;
  std::uint64_t report_interval_ns = 1'000'000'000;  // at most one drop report per instance per interval
};

class LogBudget {
 public:
  static constexpr std::size_t kInstances = 4096;  // instances tracked at most (then the first by id goes)

  explicit LogBudget(LogBudgetOptions options = {}) : o_(options) {}

  // Whether a line of `bytes` from `instance` at `now_ns` fits its budget (and takes it from
  // the budget); a line that does not is counted as dropped.
  bool admit(const std::string& instance, std::uint64_t bytes, std::uint64_t now_ns);

  struct Drops {
    std::string instance;
    std::uint64_t lines = 0;  // dropped since the previous report
  };
  // The instances with drops not yet reported whose last report is at least an interval old;
  // each drop is reported once. Also forgets the instances whose buckets have refilled since
  // their last line (as a new instance's bucket is full, nothing is lost): only instances with
  // recent output are tracked.
  std::vector<Drops> drops(std::uint64_t now_ns);
  std::size_t tracked() const { return buckets_.size(); }

  const LogBudgetOptions& options() const { return o_; }

 private:
  struct Bucket {
    double lines = 0;
    double bytes = 0;
    std::uint64_t refilled_ns = 0;
    std::uint64_t unreported = 0;
    std::uint64_t reported_ns = 0;
  };
  LogBudgetOptions o_;
  std::map<std::string, Bucket> buckets_;
};

}  // namespace kiln::kilnd::logs
