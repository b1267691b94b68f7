// Log line formats: Lambda's START/END/REPORT platform lines, timestamps, text and JSON.
#include "src/logs/log_entry.h"

#include <cmath>
#include <cstdio>
#include <ctime>

#include "common/json/field_reader.h"

namespace kiln::kilnd::logs {

const char* log_source_name(LogSource s) {
  switch (s) {
    case LogSource::kStdout: return "stdout";
    case LogSource::kStderr: return "stderr";
    case LogSource::kPlatform: return "platform";
  }
  return "unknown";
}

std::optional<LogSource> parse_log_source(std::string_view s) {
  for (auto v : {LogSource::kStdout, LogSource::kStderr, LogSource::kPlatform}) {
    if (s == log_source_name(v)) return v;
  }
  return std::nullopt;
}

std::string format_start(std::string_view request_id, std::string_view version) {
  return "START RequestId: " + std::string(request_id) + " Version: " + std::string(version);
}

std::string format_end(std::string_view request_id) { return "END RequestId: " + std::string(request_id); }

std::uint64_t billed_duration_ms(double duration_ms) {
  if (!(duration_ms > 1.0)) return 1;
  return static_cast<std::uint64_t>(std::ceil(duration_ms));
}

std::string format_report(const ReportInfo& r) {
  char buf[256];
  std::snprintf(buf, sizeof(buf), "\tDuration: %.2f ms\tBilled Duration: %llu ms\tMemory Size: %u MB\tMax Memory Used: %llu MB",
                r.duration_ms, static_cast<unsigned long long>(billed_duration_ms(r.duration_ms)), r.memory_mib,
                static_cast<unsigned long long>(r.max_memory_used_mib));
  std::string out = "REPORT RequestId: " + r.request_id + buf;
  if (r.init_duration_ms) {
    std::snprintf(buf, sizeof(buf), "\tInit Duration: %.2f ms", *r.init_duration_ms);
    out += buf;
  }
  if (!r.status.empty()) out += "\tStatus: " + r.status;
  return out;
}

std::string format_timestamp(std::uint64_t ts_ns) {
  time_t secs = static_cast<time_t>(ts_ns / 1000000000ull);
  unsigned micros = static_cast<unsigned>((ts_ns % 1000000000ull) / 1000);
  tm t{};
  gmtime_r(&secs, &t);
  char buf[64];
  std::snprintf(buf, sizeof(buf), "%04d-%02d-%02dT%02d:%02d:%02d.%06uZ", t.tm_year + 1900, t.tm_mon + 1,
                t.tm_mday, t.tm_hour, t.tm_min, t.tm_sec, micros);
  return buf;
}

std::optional<std::uint64_t> parse_timestamp(std::string_view text) {
  if (text.empty() || text.size() > 40) return std::nullopt;
  bool all_digits = true;
  for (char c : text) all_digits = all_digits && c >= '0' && c <= '9';
  if (all_digits) {
    if (text.size() > 15) return std::nullopt;
    std::uint64_t ms = 0;
    for (char c : text) ms = ms * 10 + static_cast<std::uint64_t>(c - '0');
    return ms * 1000000ull;
  }
  // YYYY-MM-DDTHH:MM:SS[.frac]Z
  auto num = [&text](std::size_t pos, std::size_t len, int* out) {
    if (pos + len > text.size()) return false;
    int v = 0;
    for (std::size_t i = pos; i < pos + len; ++i) {
      if (text[i] < '0' || text[i] > '9') return false;
      v = v * 10 + (text[i] - '0');
    }
    *out = v;
    return true;
  };
  int y, mo, d, h, mi, s;
  if (text.size() < 20 || !num(0, 4, &y) || text[4] != '-' || !num(5, 2, &mo) || text[7] != '-' ||
      !num(8, 2, &d) || (text[10] != 'T' && text[10] != 't') || !num(11, 2, &h) || text[13] != ':' ||
      !num(14, 2, &mi) || text[16] != ':' || !num(17, 2, &s)) {
    return std::nullopt;
  }
  if (mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || s > 60 || y < 1970) return std::nullopt;
  std::size_t pos = 19;
  std::uint64_t frac_ns = 0;
  if (pos < text.size() && text[pos] == '.') {
    ++pos;
    std::uint64_t scale = 100000000ull;
    std::size_t start = pos;
    while (pos < text.size() && text[pos] >= '0' && text[pos] <= '9') {
      frac_ns += static_cast<std::uint64_t>(text[pos] - '0') * scale;
      scale /= 10;
      ++pos;
    }
    if (pos == start) return std::nullopt;
  }
  if (pos + 1 != text.size() || (text[pos] != 'Z' && text[pos] != 'z')) return std::nullopt;
  tm t{};
  t.tm_year = y - 1900;
  t.tm_mon = mo - 1;
  t.tm_mday = d;
  t.tm_hour = h;
  t.tm_min = mi;
  t.tm_sec = s;
  time_t secs = timegm(&t);
  if (secs < 0) return std::nullopt;
  return static_cast<std::uint64_t>(secs) * 1000000000ull + frac_ns;
}

std::string render_text(const LogEntry& e) {
  std::string out = format_timestamp(e.ts_ns);
  out += ' ';
  out += e.instance_id.empty() ? "-" : e.instance_id;
  out += ' ';
  out += e.request_id.empty() ? "-" : e.request_id;
  out += ' ';
  out += log_source_name(e.source);
  out += ' ';
  out += e.text;
  return out;
}

nlohmann::json render_json(const LogEntry& e) {
  return {{"seq", e.seq},
          {"ts", format_timestamp(e.ts_ns)},
          {"ts_ns", e.ts_ns},
          {"instance_id", e.instance_id},
          {"request_id", e.request_id},
          {"stream", log_source_name(e.source)},
          {"message", e.text}};
}

namespace {

// A JSON string literal for `s`: printable ASCII without '"' and '\\' as it is; anything else
// through nlohmann's serializer (escapes, UTF-8 checks), so the two never differ.
void append_json_string(std::string& out, std::string_view s) {
  bool plain = true;
  for (unsigned char c : s) plain = plain && c >= 0x20 && c < 0x7f && c != '"' && c != '\\';
  if (plain) {
    out += '"';
    out += s;
    out += '"';
    return;
  }
  out += nlohmann::json(std::string(s)).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

}  // namespace

std::string render_json_line(const LogEntry& e) {
  // nlohmann's objects keep their keys sorted: the same order here.
  std::string out;
  out.reserve(160 + e.text.size());
  out += "{\"instance_id\":";
  append_json_string(out, e.instance_id);
  out += ",\"message\":";
  append_json_string(out, e.text);
  out += ",\"request_id\":";
  append_json_string(out, e.request_id);
  out += ",\"seq\":";
  out += std::to_string(e.seq);
  out += ",\"stream\":\"";
  out += log_source_name(e.source);
  out += "\",\"ts\":\"";
  out += format_timestamp(e.ts_ns);
  out += "\",\"ts_ns\":";
  out += std::to_string(e.ts_ns);
  out += "}\n";
  return out;
}

std::optional<LogEntry> entry_from_json(const nlohmann::json& j) {
  // A line that does not read is dropped whole (the store skips it, like a torn last line);
  // "ts", the rendered stamp, is not read back: ts_ns is the stamp.
  auto r = kiln::json::ObjectReader::make(j, "");
  if (!r.ok()) return std::nullopt;
  auto stream = r->req_string("stream");
  auto ts_ns = r->req_u64("ts_ns");
  auto instance_id = r->opt_string("instance_id");
  auto request_id = r->opt_string("request_id");
  auto message = r->opt_string("message");
  auto seq = r->opt_u64("seq");
  if (!stream.ok() || !ts_ns.ok() || !instance_id.ok() || !request_id.ok() || !message.ok() || !seq.ok()) {
    return std::nullopt;
  }
  auto source = parse_log_source(*stream);
  if (!source) return std::nullopt;
  LogEntry e;
  e.source = *source;
  e.ts_ns = *ts_ns;
  e.instance_id = instance_id->value_or("");
  e.request_id = request_id->value_or("");
  e.text = message->value_or("");
  e.seq = seq->value_or(0);
  return e;
}

}  // namespace kiln::kilnd::logs
