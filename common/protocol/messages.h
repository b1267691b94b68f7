// Typed payloads of the control (port 10000) and event (port 10001) frames, each a Record.
// Decoders ignore unknown keys (forward compatibility) and reject malformed known ones.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "common/protocol/frame.h"
#include "common/result.h"

namespace kiln::protocol {

enum class LogStream : std::uint8_t { kStdout = 1, kStderr = 2 };

// Every event carries "seq": a per-boot counter starting at 1, so the host can spot a gap
// after a reconnect (frames in flight when the transport reset are lost, not duplicated).

// kHello keys: seq (the next event's seq), version, boot_id, instance_id, state.
struct HelloEvent {
  std::uint64_t seq = 0;
  std::string version;
  std::string boot_id;
  std::string instance_id;
  std::string state;
};
// kReady keys: seq, port, elapsed_ms (since the command started).
struct ReadyEvent {
  std::uint64_t seq = 0;
  std::uint16_t port = 0;
  std::uint64_t elapsed_ms = 0;
};
// kNotReady keys: seq, port, waited_ms, message ("not ready after N s").
struct NotReadyEvent {
  std::uint64_t seq = 0;
  std::uint16_t port = 0;
  std::uint64_t waited_ms = 0;
  std::string message;
};
// kLog keys: seq, ts (ns since the Unix epoch, guest CLOCK_REALTIME when read), stream
// ("stdout"|"stderr"), data (line bytes without the newline), partial ("1" when the line was
// split at the length limit and continues in the next kLog of the same stream), request
// (optional: the invocation the line belongs to as kiln-init saw it, its X-Kiln-Request-Id;
// absent when it could not tell. A hint from the guest: the host checks it against the
// requests it sent to this instance).
inline constexpr std::size_t kMaxLogRequestId = 128;
struct LogEvent {
  std::uint64_t seq = 0;
  std::uint64_t ts_ns = 0;
  LogStream stream = LogStream::kStdout;
  std::string data;
  bool partial = false;
  std::string request_id;
};
// kExit keys: seq, pid, and either code (exited normally) or signal (killed by a signal).
struct ExitEvent {
  std::uint64_t seq = 0;
  std::uint64_t pid = 0;
  bool signaled = false;
  int code = 0;  // exit code, or the signal number when signaled
};
// kDropped keys: seq, count (log lines dropped since the previous kDropped).
struct DroppedEvent {
  std::uint64_t seq = 0;
  std::uint64_t count = 0;
};

// kAck keys: ok ("1"/"0"), message.
struct Ack {
  bool ok = true;
  std::string message;
};
// kStatus keys: state, pid, ready ("1"/"0"), exited, exit_code|exit_signal, dropped,
// uptime_ms, next_seq, instance_id.
struct StatusReply {
  std::string state;
  std::uint64_t pid = 0;
  bool ready = false;
  bool exited = false;
  bool signaled = false;
  int exit_code = 0;
  std::uint64_t dropped = 0;
  std::uint64_t uptime_ms = 0;
  std::uint64_t next_seq = 0;
  std::string instance_id;
};
// kIdentity keys (all optional): hostname, instance_id, wall_clock_ns (host time to set the
// guest clock to: after a snapshot restore the guest clock is stale), entropy (hex on the wire,
// at most kMaxIdentityEntropy bytes: fresh host randomness the guest mixes into its kernel RNG
// and reseeds from, so instances restored from one snapshot never share random state).
inline constexpr std::size_t kMaxIdentityEntropy = 512;
struct IdentityRequest {
  std::string hostname;
  std::string instance_id;
  std::uint64_t wall_clock_ns = 0;
  std::string entropy;  // raw bytes
};
// kShutdown keys: grace_ms (optional; default the launch spec's stop_grace_ms).
struct ShutdownRequest {
  bool has_grace = false;
  std::uint64_t grace_ms = 0;
};

// Each encoder returns a full frame (header + payload).
Result<std::string> encode(const HelloEvent& e);
Result<std::string> encode(const ReadyEvent& e);
Result<std::string> encode(const NotReadyEvent& e);
Result<std::string> encode(const LogEvent& e);
Result<std::string> encode(const ExitEvent& e);
Result<std::string> encode(const DroppedEvent& e);
Result<std::string> encode(const Ack& e);
Result<std::string> encode(const StatusReply& e);
Result<std::string> encode(const IdentityRequest& e);
Result<std::string> encode(const ShutdownRequest& e);
Result<std::string> encode_status_request();

// Decoders take the payload of a frame of the matching type.
Result<HelloEvent> decode_hello(std::string_view payload);
Result<ReadyEvent> decode_ready(std::string_view payload);
Result<NotReadyEvent> decode_not_ready(std::string_view payload);
Result<LogEvent> decode_log(std::string_view payload);
Result<ExitEvent> decode_exit(std::string_view payload);
Result<DroppedEvent> decode_dropped(std::string_view payload);
Result<Ack> decode_ack(std::string_view payload);
Result<StatusReply> decode_status(std::string_view payload);
Result<IdentityRequest> decode_identity(std::string_view payload);
Result<ShutdownRequest> decode_shutdown(std::string_view payload);

const char* log_stream_name(LogStream s);

}  // namespace kiln::protocol
