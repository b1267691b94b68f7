// Per-function log ring + JSON-lines files with one rotation, and live subscribers.
#include "src/logs/log_store.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <fstream>

#include "common/clock.h"
#include "common/io.h"
#include "common/json/field_reader.h"

namespace kiln::kilnd::logs {
namespace {

// Heap bytes an entry costs in the ring: the struct in the deque, each string's buffer (when it
// outgrew the small-string buffer) and the allocator's per-block header.
std::size_t entry_cost(const LogEntry& e) {
  constexpr std::size_t kBlockHeader = 16;
  std::size_t n = sizeof(LogEntry);
  for (const std::string* s : {&e.instance_id, &e.request_id, &e.text}) {
    if (s->capacity() > 15) n += s->capacity() + 1 + kBlockHeader;
  }
  return n;
}

// Each request's lines in stamp order, in the places its lines hold: a line the guest stamped
// before END can reach kilnd after END/REPORT were appended (its pipe is read later). Lines of
// no request stay where they are; equal stamps keep their arrival order.
void order_requests_by_stamp(std::vector<LogEntry>& entries) {
  std::map<std::string, std::vector<std::size_t>> places;
  for (std::size_t i = 0; i < entries.size(); ++i) {
    if (!entries[i].request_id.empty()) places[entries[i].request_id].push_back(i);
  }
  auto by_stamp = [](const LogEntry& a, const LogEntry& b) { return a.ts_ns < b.ts_ns; };
  for (const auto& [request, at] : places) {
    std::vector<LogEntry> lines;
    lines.reserve(at.size());
    for (std::size_t i : at) lines.push_back(std::move(entries[i]));
    std::stable_sort(lines.begin(), lines.end(), by_stamp);
    for (std::size_t k = 0; k < at.size(); ++k) entries[at[k]] = std::move(lines[k]);
  }
}

}  // namespace

LogStore::LogStore(LogStoreOptions options) : options_(std::move(options)) {}
LogStore::~LogStore() { flush(); }

LogStore::Log& LogStore::log_for(const std::string& function) {
  Log& l = logs_[function];
  if (!l.loaded) {
    l.loaded = true;
    if (!options_.dir.empty()) {
      // Older lines first: the rotated file, then the current one. Streamed line by line on
      // purpose (not io::read_file): each file may hold max_file_bytes (8 MiB by default), and
      // a missing file simply has no lines.
      for (const std::string& p : {path(function) + ".1", path(function)}) {
        std::ifstream in(p);
        std::string line;
        while (std::getline(in, line)) {
          auto j = kiln::json::parse(line);
          if (!j.ok()) continue;
          auto e = entry_from_json(*j);
          if (!e) continue;
          e->seq = l.next_seq++;
          keep(l, std::move(*e));
        }
      }
      l.file.reset(::open(path(function).c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600));
      struct stat st {};
      if (l.file && ::fstat(l.file.get(), &st) == 0) l.file_bytes = static_cast<std::uint64_t>(st.st_size);
    }
  }
  return l;
}

void LogStore::load(const std::string& function) { (void)log_for(function); }

void LogStore::drop_oldest(Log& log) {
  std::size_t cost = entry_cost(log.entries.front());
  log.memory_bytes -= cost;
  memory_bytes_ -= cost;
  log.entries.pop_front();
}

void LogStore::keep(Log& log, LogEntry e) {
  e.text.shrink_to_fit();
  std::size_t cost = entry_cost(e);
  log.entries.push_back(std::move(e));
  log.memory_bytes += cost;
  memory_bytes_ += cost;
  if (log.entries.size() > std::max<std::size_t>(options_.max_entries, 1)) drop_oldest(log);
  while (memory_bytes_ > options_.max_memory_bytes) {
    // The function holding the most gives up its oldest entry; the newest entry of all stays.
    // When `log` holds at least its fair share it is that function or close to it: no scan.
    Log* victim = &log;
    if (log.entries.size() <= 1 || log.memory_bytes < options_.max_memory_bytes / logs_.size()) {
      victim = nullptr;
      for (auto& [name, other] : logs_) {
        const bool usable = &other == &log ? other.entries.size() > 1 : !other.entries.empty();
        if (usable && (victim == nullptr || other.memory_bytes > victim->memory_bytes)) victim = &other;
      }
    }
    if (victim == nullptr) break;  // only the newest entry is left
    drop_oldest(*victim);
  }
}

void LogStore::write_line(const std::string& function, Log& log, const LogEntry& e) {
  if (!log.file) return;
  std::string line = render_json_line(e);
  if (!schedule_flush_) {
    write_out(function, log, line);
    return;
  }
  log.unwritten += line;
  if (!flush_scheduled_) {
    flush_scheduled_ = true;
    schedule_flush_();
  }
}

void LogStore::write_out(const std::string& function, Log& log, const std::string& lines) {
  if (!log.file || lines.empty()) return;
  if (log.file_bytes + lines.size() > options_.max_file_bytes) {
    // A batch that crosses the cap goes line by line, so the rotation falls between lines.
    std::size_t nl = lines.find('\n');
    if (nl != std::string::npos && nl + 1 < lines.size()) {
      for (std::size_t at = 0; at < lines.size();) {
        std::size_t end = lines.find('\n', at);
        end = end == std::string::npos ? lines.size() : end + 1;
        write_out(function, log, lines.substr(at, end - at));
        at = end;
      }
      return;
    }
  }
  if (log.file_bytes > 0 && log.file_bytes + lines.size() > options_.max_file_bytes) {
    // Bounded retention: the current file becomes .1 (replacing the older one).
    std::string p = path(function);
    ::rename(p.c_str(), (p + ".1").c_str());
    log.file.reset(::open(p.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_APPEND | O_CLOEXEC, 0600));
    log.file_bytes = 0;
    if (!log.file) return;
  }
  if (io::write_all(log.file.get(), lines).ok()) log.file_bytes += lines.size();
}

void LogStore::flush() {
  flush_scheduled_ = false;
  for (auto& [function, log] : logs_) {
    if (log.unwritten.empty()) continue;
    std::string lines;
    lines.swap(log.unwritten);
    write_out(function, log, lines);
  }
}

const LogEntry& LogStore::append(const std::string& function, LogEntry entry) {
  Log& l = log_for(function);
  if (entry.ts_ns == 0) entry.ts_ns = kiln::realtime_ns();
  if (entry.text.size() > options_.max_line_bytes) {
    entry.text.resize(options_.max_line_bytes);
    entry.text += "...[truncated]";
  }
  entry.seq = l.next_seq++;
  write_line(function, l, entry);
  keep(l, std::move(entry));
  const LogEntry& stored = l.entries.back();
  // Subscribers may unsubscribe from inside the callback: iterate over a snapshot of ids.
  std::vector<std::uint64_t> ids;
  for (const auto& [id, s] : subs_) {
    if (s.function == function) ids.push_back(id);
  }
  for (auto id : ids) {
    auto it = subs_.find(id);
    if (it != subs_.end()) it->second.fn(stored);
  }
  return stored;
}

std::vector<LogEntry> LogStore::query(const std::string& function, const LogQuery& q) const {
  std::vector<LogEntry> out;
  auto it = logs_.find(function);
  if (it == logs_.end()) return out;
  for (auto e = it->second.entries.rbegin(); e != it->second.entries.rend() && out.size() < q.limit; ++e) {
    if (e->seq <= q.after_seq) break;
    if (e->ts_ns < q.since_ns) continue;
    if (!q.request_id.empty() && e->request_id != q.request_id) continue;
    out.push_back(*e);
  }
  std::reverse(out.begin(), out.end());
  order_requests_by_stamp(out);
  return out;
}

void LogStore::remove(const std::string& function) {
  auto it = logs_.find(function);
  if (it != logs_.end()) {
    memory_bytes_ -= it->second.memory_bytes;
    logs_.erase(it);
  }
  if (!options_.dir.empty()) {
    ::unlink(path(function).c_str());
    ::unlink((path(function) + ".1").c_str());
  }
}

std::uint64_t LogStore::subscribe(const std::string& function, Subscriber s) {
  std::uint64_t id = next_sub_++;
  subs_[id] = Sub{function, std::move(s)};
  return id;
}

void LogStore::unsubscribe(std::uint64_t id) { subs_.erase(id); }

std::uint64_t LogStore::last_seq(const std::string& function) const {
  auto it = logs_.find(function);
  return it == logs_.end() ? 0 : it->second.next_seq - 1;
}

}  // namespace kiln::kilnd::logs
