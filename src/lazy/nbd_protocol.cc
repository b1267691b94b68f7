// Encoders and decoders of nbd_protocol.h. Every decoder checks lengths before it loads.
#include "src/lazy/nbd_protocol.h"

#include "common/hex.h"

namespace kiln::kilnd::lazy::nbd {
uint16_t load_be16(const char* p) {
  const auto* u = reinterpret_cast<const unsigned char*>(p);
  return static_cast<uint16_t>((u[0] << 8) | u[1]);
}

uint32_t load_be32(const char* p) { return (static_cast<uint32_t>(load_be16(p)) << 16) | load_be16(p + 2); }

uint64_t load_be64(const char* p) { return (static_cast<uint64_t>(load_be32(p)) << 32) | load_be32(p + 4); }

void append_be16(std::string& out, uint16_t v) {
  out.push_back(static_cast<char>(v >> 8));
  out.push_back(static_cast<char>(v & 0xff));
}

void append_be32(std::string& out, uint32_t v) {
  append_be16(out, static_cast<uint16_t>(v >> 16));
  append_be16(out, static_cast<uint16_t>(v & 0xffff));
}

void append_be64(std::string& out, uint64_t v) {
  append_be32(out, static_cast<uint32_t>(v >> 32));
  append_be32(out, static_cast<uint32_t>(v & 0xffffffffu));
}

std::string encode_greeting() {
  std::string out;
  append_be64(out, kInitMagic);
  append_be64(out, kOptionMagic);
  append_be16(out, kFlagFixedNewstyle | kFlagNoZeroes);
  return out;
}

Result<OptionHeader> decode_option_header(std::string_view bytes) {
  if (bytes.size() != kOptionHeaderBytes)
    return make_error("option header of " + std::to_string(bytes.size()) + " bytes");
  const uint64_t magic = load_be64(bytes.data());
  if (magic != kOptionMagic) return make_error("option magic " + hex(magic) + " is not IHAVEOPT");
  return OptionHeader{load_be32(bytes.data() + 8), load_be32(bytes.data() + 12)};
}

Result<GoRequest> decode_go(std::string_view data) {
  if (data.size() < 4) return make_error("option data of " + std::to_string(data.size()) + " bytes has no name length");
  const uint32_t name_len = load_be32(data.data());
  if (name_len > kMaxNameBytes) return make_error("name of " + std::to_string(name_len) + " bytes exceeds 4096");
  // Name plus the 16-bit count of info requests must fit (proto.md: "no larger than the option data
  // length - 6").
  if (static_cast<uint64_t>(name_len) + 6 > data.size()) {
    return make_error("name length " + std::to_string(name_len) + " exceeds the option's data");
  }
  GoRequest go;
  go.name.assign(data.substr(4, name_len));
  const uint16_t count = load_be16(data.data() + 4 + name_len);
  const size_t rest = data.size() - 6 - name_len;
  if (static_cast<size_t>(count) * 2 > rest) {
    return make_error(std::to_string(count) + " info requests need " + std::to_string(count * 2) +
                      " bytes, the option has " + std::to_string(rest));
  }
  if (static_cast<size_t>(count) * 2 < rest) {
    return make_error(std::to_string(rest - static_cast<size_t>(count) * 2) + " trailing bytes");
  }
  for (uint16_t i = 0; i < count; ++i) go.info_requests.push_back(load_be16(data.data() + 6 + name_len + 2 * i));
  return go;
}

std::string encode_option_reply(uint32_t option, uint32_t reply_type, std::string_view data) {
  std::string out;
  append_be64(out, kOptionReplyMagic);
  append_be32(out, option);
  append_be32(out, reply_type);
  append_be32(out, static_cast<uint32_t>(data.size()));
  out.append(data);
  return out;
}

std::string encode_info_export(uint64_t size, uint16_t transmission_flags) {
  std::string out;
  append_be16(out, kInfoExport);
  append_be64(out, size);
  append_be16(out, transmission_flags);
  return out;
}

std::string encode_info_block_size(uint32_t minimum, uint32_t preferred, uint32_t maximum) {
  std::string out;
  append_be16(out, kInfoBlockSize);
  append_be32(out, minimum);
  append_be32(out, preferred);
  append_be32(out, maximum);
  return out;
}

std::string encode_export_name_reply(uint64_t size, uint16_t transmission_flags, bool no_zeroes) {
  std::string out;
  append_be64(out, size);
  append_be16(out, transmission_flags);
  if (!no_zeroes) out.append(124, '\0');
  return out;
}

Result<Request> decode_request(std::string_view bytes) {
  if (bytes.size() != kRequestBytes) return make_error("request of " + std::to_string(bytes.size()) + " bytes");
  const uint32_t magic = load_be32(bytes.data());
  if (magic != kRequestMagic) return make_error("request magic " + hex(magic) + " is not NBD_REQUEST_MAGIC");
  Request r;
  r.flags = load_be16(bytes.data() + 4);
  r.type = load_be16(bytes.data() + 6);
  r.handle = load_be64(bytes.data() + 8);
  r.offset = load_be64(bytes.data() + 16);
  r.length = load_be32(bytes.data() + 24);
  return r;
}

std::string encode_simple_reply(uint32_t error, uint64_t handle) {
  std::string out;
  append_be32(out, kSimpleReplyMagic);
  append_be32(out, error);
  append_be64(out, handle);
  return out;
}

uint32_t check_read(const Request& request, uint64_t size) {
  if (request.length == 0 || request.length > kMaxPayloadBytes) return kEinval;
  if (request.offset > size || request.length > size - request.offset) return kEinval;
  return 0;
}

}  // namespace kiln::kilnd::lazy::nbd
