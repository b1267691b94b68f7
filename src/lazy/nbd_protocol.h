// The NBD protocol's wire formats, server side (NetworkBlockDevice/nbd doc/proto.md: fixed newstyle
// negotiation, simple replies): pure encoders and strict decoders of untrusted bytes, so the
// session (nbd_session.h) only moves bytes and the parsing is fuzzed on its own.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"

namespace kiln::kilnd::lazy::nbd {

// Magics (proto.md "Handshake" and "Transmission").
inline constexpr uint64_t kInitMagic = 0x4e42444d41474943ull;    // "NBDMAGIC"
inline constexpr uint64_t kOptionMagic = 0x49484156454f5054ull;  // "IHAVEOPT"
inline constexpr uint64_t kOptionReplyMagic = 0x3e889045565a9ull;
inline constexpr uint32_t kRequestMagic = 0x25609513;
inline constexpr uint32_t kSimpleReplyMagic = 0x67446698;

// Handshake flags (server) and client flags.
inline constexpr uint16_t kFlagFixedNewstyle = 1 << 0;
inline constexpr uint16_t kFlagNoZeroes = 1 << 1;
inline constexpr uint32_t kClientFlagFixedNewstyle = 1 << 0;
inline constexpr uint32_t kClientFlagNoZeroes = 1 << 1;

// Transmission flags.
inline constexpr uint16_t kFlagHasFlags = 1 << 0;
inline constexpr uint16_t kFlagReadOnly = 1 << 1;
inline constexpr uint16_t kFlagCanMultiConn = 1 << 8;

// Options.
inline constexpr uint32_t kOptExportName = 1;
inline constexpr uint32_t kOptAbort = 2;
inline constexpr uint32_t kOptList = 3;
inline constexpr uint32_t kOptInfo = 6;
inline constexpr uint32_t kOptGo = 7;

// Option replies.
inline constexpr uint32_t kRepAck = 1;
inline constexpr uint32_t kRepServer = 2;
inline constexpr uint32_t kRepInfo = 3;
inline constexpr uint32_t kRepErrUnsup = (1u << 31) + 1;
inline constexpr uint32_t kRepErrInvalid = (1u << 31) + 3;
inline constexpr uint32_t kRepErrUnknown = (1u << 31) + 6;
inline constexpr uint32_t kRepErrTooBig = (1u << 31) + 9;

// NBD_INFO types.
inline constexpr uint16_t kInfoExport = 0;
inline constexpr uint16_t kInfoBlockSize = 3;

// Commands.
inline constexpr uint16_t kCmdRead = 0;
inline constexpr uint16_t kCmdWrite = 1;
inline constexpr uint16_t kCmdDisc = 2;
inline constexpr uint16_t kCmdFlush = 3;
inline constexpr uint16_t kCmdTrim = 4;
inline constexpr uint16_t kCmdWriteZeroes = 6;

// Errors of a reply.
inline constexpr uint32_t kEperm = 1;
inline constexpr uint32_t kEio = 5;
inline constexpr uint32_t kEinval = 22;
inline constexpr uint32_t kEshutdown = 108;

inline constexpr size_t kOptionHeaderBytes = 16;  // magic, option, length
inline constexpr size_t kRequestBytes = 28;       // magic, flags, type, handle, offset, length
inline constexpr uint32_t kMaxNameBytes = 4096;   // proto.md: strings are at most 4096 bytes
// The largest option payload a session reads (a GO with the longest name and every info type listed
// twice fits); a longer one ends the session.
inline constexpr uint32_t kMaxOptionBytes = 4 + kMaxNameBytes + 2 + 2 * 64;
// The largest read a client may ask for (advertised as NBD_INFO_BLOCK_SIZE's maximum payload).
inline constexpr uint32_t kMaxPayloadBytes = 8u << 20;

// The server's first bytes: NBDMAGIC, IHAVEOPT, handshake flags.
std::string encode_greeting();

struct OptionHeader {
  uint32_t option = 0;
  uint32_t length = 0;
};
// 16 bytes from the client. Errors: "option magic 0x... is not IHAVEOPT".
Result<OptionHeader> decode_option_header(std::string_view bytes);

// The data of NBD_OPT_INFO / NBD_OPT_GO. Errors: "name length N exceeds the option's data", "name
// of N bytes exceeds 4096", "N info requests need M bytes, the option has K", "N trailing bytes".
struct GoRequest {
  std::string name;
  std::vector<uint16_t> info_requests;
};
Result<GoRequest> decode_go(std::string_view data);

std::string encode_option_reply(uint32_t option, uint32_t reply_type, std::string_view data = {});
// NBD_REP_INFO payloads.
std::string encode_info_export(uint64_t size, uint16_t transmission_flags);
std::string encode_info_block_size(uint32_t minimum, uint32_t preferred, uint32_t maximum);
// The answer to NBD_OPT_EXPORT_NAME: size, transmission flags, and 124 zero bytes unless the client
// negotiated NBD_FLAG_C_NO_ZEROES.
std::string encode_export_name_reply(uint64_t size, uint16_t transmission_flags, bool no_zeroes);

struct Request {
  uint16_t flags = 0;
  uint16_t type = 0;
  uint64_t handle = 0;
  uint64_t offset = 0;
  uint32_t length = 0;
};
// 28 bytes from the client. Errors: "request magic 0x... is not NBD_REQUEST_MAGIC".
Result<Request> decode_request(std::string_view bytes);
// The simple reply header (a successful read's data follows it).
std::string encode_simple_reply(uint32_t error, uint64_t handle);

// The error a read of [offset, offset + length) of an export of `size` bytes gets before it is
// served, or 0: EINVAL for a zero length, a length over kMaxPayloadBytes, or a range past the end.
uint32_t check_read(const Request& request, uint64_t size);

// Big-endian loads and stores of the wire format.
uint16_t load_be16(const char* p);
uint32_t load_be32(const char* p);
uint64_t load_be64(const char* p);
void append_be16(std::string& out, uint16_t v);
void append_be32(std::string& out, uint32_t v);
void append_be64(std::string& out, uint64_t v);

}  // namespace kiln::kilnd::lazy::nbd
