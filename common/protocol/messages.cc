// Encoders/decoders for the typed control and event payloads (see messages.h for the keys).
#include "common/protocol/messages.h"

#include "common/protocol/record.h"

namespace kiln::protocol {

namespace {

Result<std::string> frame_of(FrameType type, const Record& r) {
  KILN_ASSIGN_OR_RETURN(std::string payload, r.encode());
  return encode_frame(type, payload);
}

std::string str(const Record& r, std::string_view key) {
  auto v = r.get(key);
  return v ? std::string(*v) : std::string();
}

bool flag(const Record& r, std::string_view key) {
  auto v = r.get(key);
  return v && *v == "1";
}

std::string to_hex(std::string_view bytes) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out;
  out.reserve(bytes.size() * 2);
  for (unsigned char c : bytes) {
    out.push_back(kDigits[c >> 4]);
    out.push_back(kDigits[c & 0x0f]);
  }
  return out;
}

Result<std::string> from_hex(std::string_view hex) {
  auto nibble = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  };
  if (hex.size() % 2 != 0) return make_error("record: hex field of odd length");
  std::string out(hex.size() / 2, '\0');
  for (std::size_t i = 0; i < out.size(); ++i) {
    int hi = nibble(hex[2 * i]), lo = nibble(hex[2 * i + 1]);
    if (hi < 0 || lo < 0) return make_error("record: hex field with a non-hex digit");
    out[i] = static_cast<char>(hi << 4 | lo);
  }
  return out;
}

Result<int> small_int(const Record& r, std::string_view key) {
  KILN_ASSIGN_OR_RETURN(std::uint64_t v, r.get_u64(key, 0));
  if (v > 0x7fffffff) return make_error("record: field '" + std::string(key) + "' out of range");
  return static_cast<int>(v);
}

Result<std::uint16_t> port_of(const Record& r) {
  KILN_ASSIGN_OR_RETURN(std::uint64_t v, r.get_u64("port", 0));
  if (v > 65535) return make_error("record: port out of range");
  return static_cast<std::uint16_t>(v);
}

}  // namespace

const char* log_stream_name(LogStream s) { return s == LogStream::kStderr ? "stderr" : "stdout"; }

Result<std::string> encode(const HelloEvent& e) {
  Record r;
  r.add_u64("seq", e.seq).add("version", e.version).add("boot_id", e.boot_id);
  r.add("instance_id", e.instance_id).add("state", e.state);
  return frame_of(FrameType::kHello, r);
}

Result<std::string> encode(const ReadyEvent& e) {
  Record r;
  r.add_u64("seq", e.seq).add_u64("port", e.port).add_u64("elapsed_ms", e.elapsed_ms);
  return frame_of(FrameType::kReady, r);
}

Result<std::string> encode(const NotReadyEvent& e) {
  Record r;
  r.add_u64("seq", e.seq).add_u64("port", e.port).add_u64("waited_ms", e.waited_ms);
  r.add("message", e.message);
  return frame_of(FrameType::kNotReady, r);
}

Result<std::string> encode(const LogEvent& e) {
  Record r;
  r.add_u64("seq", e.seq).add_u64("ts", e.ts_ns).add("stream", log_stream_name(e.stream));
  r.add("data", e.data);
  if (e.partial) r.add("partial", "1");
  if (!e.request_id.empty()) {
    if (e.request_id.size() > kMaxLogRequestId) return make_error("log: request id too long");
    r.add("request", e.request_id);
  }
  return frame_of(FrameType::kLog, r);
}

Result<std::string> encode(const ExitEvent& e) {
  Record r;
  r.add_u64("seq", e.seq).add_u64("pid", e.pid);
  if (e.signaled) {
    r.add_u64("signal", static_cast<std::uint64_t>(e.code));
  } else {
    r.add_u64("code", static_cast<std::uint64_t>(e.code));
  }
  return frame_of(FrameType::kExit, r);
}

Result<std::string> encode(const DroppedEvent& e) {
  Record r;
  r.add_u64("seq", e.seq).add_u64("count", e.count);
  return frame_of(FrameType::kDropped, r);
}

Result<std::string> encode(const Ack& e) {
  Record r;
  r.add("ok", e.ok ? "1" : "0").add("message", e.message);
  return frame_of(FrameType::kAck, r);
}

Result<std::string> encode(const StatusReply& e) {
  Record r;
  r.add("state", e.state).add_u64("pid", e.pid).add("ready", e.ready ? "1" : "0");
  r.add("exited", e.exited ? "1" : "0");
  if (e.exited) {
    r.add_u64(e.signaled ? "exit_signal" : "exit_code", static_cast<std::uint64_t>(e.exit_code));
  }
  r.add_u64("dropped", e.dropped).add_u64("uptime_ms", e.uptime_ms);
  r.add_u64("next_seq", e.next_seq).add("instance_id", e.instance_id);
  return frame_of(FrameType::kStatus, r);
}

Result<std::string> encode(const IdentityRequest& e) {
  Record r;
  if (!e.hostname.empty()) r.add("hostname", e.hostname);
  if (!e.instance_id.empty()) r.add("instance_id", e.instance_id);
  if (e.wall_clock_ns != 0) r.add_u64("wall_clock_ns", e.wall_clock_ns);
  if (e.entropy.size() > kMaxIdentityEntropy) return make_error("identity: entropy over " + std::to_string(kMaxIdentityEntropy) + " bytes");
  if (!e.entropy.empty()) r.add("entropy", to_hex(e.entropy));
  return frame_of(FrameType::kIdentity, r);
}

Result<std::string> encode(const ShutdownRequest& e) {
  Record r;
  if (e.has_grace) r.add_u64("grace_ms", e.grace_ms);
  return frame_of(FrameType::kShutdown, r);
}

Result<std::string> encode_status_request() { return encode_frame(FrameType::kStatusRequest, ""); }

Result<HelloEvent> decode_hello(std::string_view payload) {
  KILN_ASSIGN_OR_RETURN(Record r, Record::decode(payload));
  HelloEvent e;
  KILN_ASSIGN_OR_RETURN(e.seq, r.require_u64("seq"));
  e.version = str(r, "version");
  e.boot_id = str(r, "boot_id");
  e.instance_id = str(r, "instance_id");
  e.state = str(r, "state");
  return e;
}

Result<ReadyEvent> decode_ready(std::string_view payload) {
  KILN_ASSIGN_OR_RETURN(Record r, Record::decode(payload));
  ReadyEvent e;
  KILN_ASSIGN_OR_RETURN(e.seq, r.require_u64("seq"));
  KILN_ASSIGN_OR_RETURN(e.port, port_of(r));
  KILN_ASSIGN_OR_RETURN(e.elapsed_ms, r.get_u64("elapsed_ms", 0));
  return e;
}

Result<NotReadyEvent> decode_not_ready(std::string_view payload) {
  KILN_ASSIGN_OR_RETURN(Record r, Record::decode(payload));
  NotReadyEvent e;
  KILN_ASSIGN_OR_RETURN(e.seq, r.require_u64("seq"));
  KILN_ASSIGN_OR_RETURN(e.port, port_of(r));
  KILN_ASSIGN_OR_RETURN(e.waited_ms, r.get_u64("waited_ms", 0));
  e.message = str(r, "message");
  return e;
}

Result<LogEvent> decode_log(std::string_view payload) {
  KILN_ASSIGN_OR_RETURN(Record r, Record::decode(payload));
  LogEvent e;
  KILN_ASSIGN_OR_RETURN(e.seq, r.require_u64("seq"));
  KILN_ASSIGN_OR_RETURN(e.ts_ns, r.require_u64("ts"));
  auto stream = r.get("stream");
  if (!stream) return make_error("log: missing stream");
  if (*stream == "stdout") {
    e.stream = LogStream::kStdout;
  } else if (*stream == "stderr") {
    e.stream = LogStream::kStderr;
  } else {
    return make_error("log: unknown stream");
  }
  auto data = r.get("data");
  if (!data) return make_error("log: missing data");
  e.data = std::string(*data);
  e.partial = flag(r, "partial");
  if (auto req = r.get("request")) {
    if (req->size() > kMaxLogRequestId) return make_error("log: request id too long");
    e.request_id = std::string(*req);
  }
  return e;
}

Result<ExitEvent> decode_exit(std::string_view payload) {
  KILN_ASSIGN_OR_RETURN(Record r, Record::decode(payload));
  ExitEvent e;
  KILN_ASSIGN_OR_RETURN(e.seq, r.require_u64("seq"));
  KILN_ASSIGN_OR_RETURN(e.pid, r.get_u64("pid", 0));
  if (r.get("signal")) {
    e.signaled = true;
    KILN_ASSIGN_OR_RETURN(e.code, small_int(r, "signal"));
  } else if (r.get("code")) {
    KILN_ASSIGN_OR_RETURN(e.code, small_int(r, "code"));
  } else {
    return make_error("exit: neither code nor signal");
  }
  return e;
}

Result<DroppedEvent> decode_dropped(std::string_view payload) {
  KILN_ASSIGN_OR_RETURN(Record r, Record::decode(payload));
  DroppedEvent e;
  KILN_ASSIGN_OR_RETURN(e.seq, r.require_u64("seq"));
  KILN_ASSIGN_OR_RETURN(e.count, r.require_u64("count"));
  return e;
}

Result<Ack> decode_ack(std::string_view payload) {
  KILN_ASSIGN_OR_RETURN(Record r, Record::decode(payload));
  Ack a;
  a.ok = flag(r, "ok");
  a.message = str(r, "message");
  return a;
}

Result<StatusReply> decode_status(std::string_view payload) {
  KILN_ASSIGN_OR_RETURN(Record r, Record::decode(payload));
  StatusReply s;
  s.state = str(r, "state");
  KILN_ASSIGN_OR_RETURN(s.pid, r.get_u64("pid", 0));
  s.ready = flag(r, "ready");
  s.exited = flag(r, "exited");
  if (r.get("exit_signal")) {
    s.signaled = true;
    KILN_ASSIGN_OR_RETURN(s.exit_code, small_int(r, "exit_signal"));
  } else {
    KILN_ASSIGN_OR_RETURN(s.exit_code, small_int(r, "exit_code"));
  }
  KILN_ASSIGN_OR_RETURN(s.dropped, r.get_u64("dropped", 0));
  KILN_ASSIGN_OR_RETURN(s.uptime_ms, r.get_u64("uptime_ms", 0));
  KILN_ASSIGN_OR_RETURN(s.next_seq, r.get_u64("next_seq", 0));
  s.instance_id = str(r, "instance_id");
  return s;
}

Result<IdentityRequest> decode_identity(std::string_view payload) {
  KILN_ASSIGN_OR_RETURN(Record r, Record::decode(payload));
  IdentityRequest i;
  i.hostname = str(r, "hostname");
  i.instance_id = str(r, "instance_id");
  KILN_ASSIGN_OR_RETURN(i.wall_clock_ns, r.get_u64("wall_clock_ns", 0));
  if (auto hex = r.get("entropy")) {
    if (hex->size() > 2 * kMaxIdentityEntropy) return make_error("identity: entropy over " + std::to_string(kMaxIdentityEntropy) + " bytes");
    KILN_ASSIGN_OR_RETURN(i.entropy, from_hex(*hex));
  }
  return i;
}

Result<ShutdownRequest> decode_shutdown(std::string_view payload) {
  KILN_ASSIGN_OR_RETURN(Record r, Record::decode(payload));
  ShutdownRequest s;
  if (r.get("grace_ms")) {
    s.has_grace = true;
    KILN_ASSIGN_OR_RETURN(s.grace_ms, r.get_u64("grace_ms", 0));
  }
  return s;
}

}  // namespace kiln::protocol
