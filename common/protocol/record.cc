// Record encode/decode (see record.h for the byte layout).
#include "common/protocol/record.h"

#include "common/protocol/frame.h"

namespace kiln::protocol {

namespace {

constexpr std::size_t kMaxEntries = 65536;

bool valid_key(std::string_view key) {
  if (key.empty() || key.size() > 255) return false;
  for (char c : key) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_';
    if (!ok) return false;
  }
  return true;
}

}  // namespace

std::optional<std::uint64_t> parse_u64(std::string_view s) {
  if (s.empty() || s.size() > 20) return std::nullopt;
  std::uint64_t v = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return std::nullopt;
    std::uint64_t d = static_cast<std::uint64_t>(c - '0');
    if (v > (UINT64_MAX - d) / 10) return std::nullopt;
    v = v * 10 + d;
  }
  return v;
}

Record& Record::add(std::string_view key, std::string_view value) {
  entries_.emplace_back(std::string(key), std::string(value));
  return *this;
}

Record& Record::add_u64(std::string_view key, std::uint64_t value) {
  return add(key, std::to_string(value));
}

std::optional<std::string_view> Record::get(std::string_view key) const {
  for (const auto& [k, v] : entries_) {
    if (k == key) return std::string_view(v);
  }
  return std::nullopt;
}

std::vector<std::string_view> Record::get_all(std::string_view key) const {
  std::vector<std::string_view> out;
  for (const auto& [k, v] : entries_) {
    if (k == key) out.emplace_back(v);
  }
  return out;
}

Result<std::uint64_t> Record::get_u64(std::string_view key, std::uint64_t fallback) const {
  auto v = get(key);
  if (!v) return fallback;
  auto n = parse_u64(*v);
  if (!n) return make_error("record: field '" + std::string(key) + "' is not a number");
  return *n;
}

Result<std::uint64_t> Record::require_u64(std::string_view key) const {
  if (!get(key)) return make_error("record: missing field '" + std::string(key) + "'");
  return get_u64(key, 0);
}

Result<std::string> Record::encode() const {
  std::string out;
  for (const auto& [k, v] : entries_) {
    if (!valid_key(k)) return make_error("record: invalid key '" + k + "'");
    // Check before appending: size + 5 + k + v must stay within the payload cap.
    std::size_t need = 1 + k.size() + 4;
    if (v.size() > kMaxPayload || out.size() + need > kMaxPayload ||
        v.size() > kMaxPayload - out.size() - need) {
      return make_error("record: encoded size exceeds the frame cap");
    }
    out.push_back(static_cast<char>(k.size()));
    out.append(k);
    auto len = static_cast<std::uint32_t>(v.size());
    for (int i = 0; i < 4; ++i) out.push_back(static_cast<char>((len >> (8 * i)) & 0xff));
    out.append(v);
  }
  return out;
}

Result<Record> Record::decode(std::string_view bytes) {
  Record r;
  std::size_t pos = 0;
  while (pos < bytes.size()) {
    if (r.entries_.size() >= kMaxEntries) return make_error("record: too many entries");
    std::size_t klen = static_cast<unsigned char>(bytes[pos]);
    pos += 1;
    if (klen == 0) return make_error("record: empty key");
    if (bytes.size() - pos < klen) return make_error("record: truncated key");
    std::string_view key = bytes.substr(pos, klen);
    if (!valid_key(key)) return make_error("record: invalid key");
    pos += klen;
    if (bytes.size() - pos < 4) return make_error("record: truncated value length");
    std::uint32_t vlen = 0;
    for (int i = 0; i < 4; ++i) {
      vlen |= static_cast<std::uint32_t>(static_cast<unsigned char>(bytes[pos + i])) << (8 * i);
    }
    pos += 4;
    if (bytes.size() - pos < vlen) return make_error("record: truncated value");
    r.entries_.emplace_back(std::string(key), std::string(bytes.substr(pos, vlen)));
    pos += vlen;
  }
  return r;
}

}  // namespace kiln::protocol
