// LogStore: per-function logs in memory (bounded rings under one byte budget for all functions)
// and on disk (<dir>/<name>.log as JSON lines, rotated once at a size cap), with queries and live
// subscribers for `follow`.
// Single-threaded: kilnd calls it from its event loop only.
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "common/result.h"
#include "common/unique_fd.h"
#include "src/logs/log_entry.h"

namespace kiln::kilnd::logs {

struct LogStoreOptions {
  std::string dir;  // empty: memory only
  std::size_t max_entries = 10000;  // per function, in memory
  std::uint64_t max_file_bytes = 8 * 1024 * 1024;  // per file; one rotated file is kept
  std::size_t max_line_bytes = 64 * 1024;  // longer messages are truncated
  // All functions' in-memory entries together (estimated heap use). Over it, the oldest entries
  // of the function holding the most go first, so a chatty function cannot evict a quiet one's.
  std::size_t max_memory_bytes = 8 * 1024 * 1024;
};

struct LogQuery {
  std::uint64_t since_ns = 0;  // entries with ts_ns >= since_ns
  std::uint64_t after_seq = 0;  // entries with seq > after_seq
  std::string request_id;  // only this request's lines
  std::size_t limit = 1000;  // the newest `limit` matches
};

class LogStore {
 public:
  using Subscriber = std::function<void(const LogEntry&)>;

  explicit LogStore(LogStoreOptions options);
  ~LogStore();
  LogStore(const LogStore&) = delete;
  LogStore& operator=(const LogStore&) = delete;

  // Loads what earlier runs left on disk for `function` (bounded by max_entries).
  void load(const std::string& function);
  // Assigns seq (and ts_ns when 0), stores, writes to disk, notifies subscribers.
  const LogEntry& append(const std::string& function, LogEntry entry);
  // Oldest first; within one request, by stamp (a late-read line stamped before END comes
  // before END), stable for equal stamps.
  std::vector<LogEntry> query(const std::string& function, const LogQuery& q) const;
  // Forgets the function's logs (memory and files).
  void remove(const std::string& function);

  std::uint64_t subscribe(const std::string& function, Subscriber s);
  void unsubscribe(std::uint64_t id);
  std::uint64_t last_seq(const std::string& function) const;

  // Disk writes in batches: with a scheduler set (kilnd: a timer on its event loop), append()
  // queues the line and the scheduler is asked once for a flush() of everything queued, so a
  // request's END/REPORT lines reach the disk after its response went out, in one write per
  // file. Queries and subscribers see every line at once either way. Without one, each line is
  // written as it comes. The destructor flushes.
  void set_flush_scheduler(std::function<void()> schedule) { schedule_flush_ = std::move(schedule); }
  void flush();
  // Estimated heap bytes held by the in-memory entries of every function.
  std::size_t memory_bytes() const { return memory_bytes_; }

 private:
  struct Log {
    std::deque<LogEntry> entries;
    std::uint64_t next_seq = 1;
    UniqueFd file;
    std::uint64_t file_bytes = 0;
    std::size_t memory_bytes = 0;  // estimated heap use of `entries`
    std::string unwritten;  // rendered lines waiting for flush()
    bool loaded = false;
  };
  Log& log_for(const std::string& function);
  // Stores `e` in memory and evicts oldest entries while over the entry count or byte budget.
  void keep(Log& log, LogEntry e);
  void drop_oldest(Log& log);
  std::string path(const std::string& function) const { return options_.dir + "/" + function + ".log"; }
  void write_line(const std::string& function, Log& log, const LogEntry& e);
  void write_out(const std::string& function, Log& log, const std::string& lines);

  LogStoreOptions options_;
  std::map<std::string, Log> logs_;
  std::size_t memory_bytes_ = 0;
  std::function<void()> schedule_flush_;
  bool flush_scheduled_ = false;
  struct Sub {
    std::string function;
    Subscriber fn;
  };
  std::map<std::uint64_t, Sub> subs_;
  std::uint64_t next_sub_ = 1;
};

}  // namespace kiln::kilnd::logs
