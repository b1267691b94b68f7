// Little-endian byte writer and bounds-checked reader for snapshot state. The reader never
// reads past its input: a short or malformed stream makes it fail (sticky) with a reason.
#pragma once

#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

namespace kiln::vmm::snapshot {

class ByteWriter {
 public:
  void u8(uint8_t v) { raw(&v, 1); }
  void u16(uint16_t v) { raw(&v, 2); }
  void u32(uint32_t v) { raw(&v, 4); }
  void u64(uint64_t v) { raw(&v, 8); }
  void boolean(bool v) { u8(v ? 1 : 0); }
  void str(std::string_view s) {
    u32(static_cast<uint32_t>(s.size()));
    raw(s.data(), s.size());
  }
  // A trivially copyable struct, prefixed with its size so a layout change is detected.
  template <typename T>
  void pod(const T& v) {
    static_assert(std::is_trivially_copyable_v<T>);
    u32(static_cast<uint32_t>(sizeof(T)));
    raw(&v, sizeof(T));
  }
  const std::string& data() const { return buf_; }

 private:
  void raw(const void* p, size_t n) { buf_.append(static_cast<const char*>(p), n); }
  std::string buf_;
};

class ByteReader {
 public:
  explicit ByteReader(std::string_view in) : in_(in) {}
  bool u8(uint8_t& v) { return raw(&v, 1, "u8"); }
  bool u16(uint16_t& v) { return raw(&v, 2, "u16"); }
  bool u32(uint32_t& v) { return raw(&v, 4, "u32"); }
  bool u64(uint64_t& v) { return raw(&v, 8, "u64"); }
  bool boolean(bool& v) {
    uint8_t b = 0;
    if (!u8(b)) return false;
    if (b > 1) return fail("boolean out of range");
    v = b == 1;
    return true;
  }
  bool str(std::string& s, size_t max_len) {
    uint32_t n = 0;
    if (!u32(n)) return false;
    if (n > max_len) return fail("string of " + std::to_string(n) + " bytes exceeds " + std::to_string(max_len));
    if (n > remaining()) return fail("string runs past the end");
    s.assign(in_.data() + pos_, n);
    pos_ += n;
    return true;
  }
  template <typename T>
  bool pod(T& v, const char* what) {
    static_assert(std::is_trivially_copyable_v<T>);
    uint32_t n = 0;
    if (!u32(n)) return false;
    if (n != sizeof(T)) return fail(std::string(what) + ": stored size " + std::to_string(n) + " != " + std::to_string(sizeof(T)));
    return raw(&v, sizeof(T), what);
  }
  // Element counts are checked against what the rest of the input could possibly hold.
  bool count(uint32_t& n, uint32_t max, const char* what) {
    if (!u32(n)) return false;
    if (n > max) return fail(std::string(what) + ": count " + std::to_string(n) + " exceeds " + std::to_string(max));
    return true;
  }
  size_t remaining() const { return in_.size() - pos_; }
  bool ok() const { return error_.empty(); }
  const std::string& error() const { return error_; }
  bool fail(std::string why) {
    if (error_.empty()) error_ = std::move(why);
    return false;
  }

 private:
  bool raw(void* p, size_t n, const char* what) {
    if (!ok()) return false;
    if (n > remaining()) return fail(std::string("truncated while reading ") + what);
    std::memcpy(p, in_.data() + pos_, n);
    pos_ += n;
    return true;
  }
  std::string_view in_;
  size_t pos_ = 0;
  std::string error_;
};

}  // namespace kiln::vmm::snapshot
