// Errors as values: Result<T> holds either a T or an Error (message + optional errno).
// Used on every path the guest, the network, the disk or the user can influence.
#pragma once

#include <cerrno>
#include <cstdlib>
#include <cstdio>
#include <string>
#include <utility>
#include <variant>

namespace kiln {

struct Error {
  std::string message;
  int sys_errno = 0;  // errno when the error came from a syscall, else 0

  // Prefixes context, e.g. err.wrap("loading kernel") -> "loading kernel: open: ENOENT".
  Error wrap(const std::string& context) const { return Error{context + ": " + message, sys_errno}; }
};

// An Error from the current errno: "what: strerror(errno)".
Error errno_error(const std::string& what, int err = errno);

template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : v_(std::move(value)) {}  // NOLINT: implicit by design
  Result(Error error) : v_(std::move(error)) {}  // NOLINT

  bool ok() const { return v_.index() == 0; }
  explicit operator bool() const { return ok(); }

  // Accessing the wrong alternative is a programming error, so it aborts loudly.
  T& value() & { check(true); return std::get<0>(v_); }
  const T& value() const& { check(true); return std::get<0>(v_); }
  T&& value() && { check(true); return std::get<0>(std::move(v_)); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }

  const Error& error() const { check(false); return std::get<1>(v_); }

 private:
  void check(bool want_value) const {
    if (ok() != want_value) {
      std::fprintf(stderr, "kiln: Result accessed as %s but holds %s\n",
                   want_value ? "value" : "error", ok() ? "a value" : std::get<1>(v_).message.c_str());
      std::abort();
    }
  }
  std::variant<T, Error> v_;
};

template <>
class [[nodiscard]] Result<void> {
 public:
  Result() = default;
  Result(Error error) : error_(std::move(error)), ok_(false) {}  // NOLINT
  bool ok() const { return ok_; }
  explicit operator bool() const { return ok_; }
  const Error& error() const {
    if (ok_) {
      std::fprintf(stderr, "kiln: Result<void> holds no error\n");
      std::abort();
    }
    return error_;
  }

 private:
  Error error_;
  bool ok_ = true;
};

using Status = Result<void>;

inline Status ok_status() { return Status(); }
inline Error make_error(std::string message) { return Error{std::move(message), 0}; }

}  // namespace kiln

// Propagates an error from an expression returning Result<...>/Status.
#define KILN_TRY(expr)                         \
  do {                                         \
    auto kiln_try_r_ = (expr);                 \
    if (!kiln_try_r_.ok()) return kiln_try_r_.error(); \
  } while (0)

#define KILN_CONCAT_INNER_(a, b) a##b
#define KILN_CONCAT_(a, b) KILN_CONCAT_INNER_(a, b)
// KILN_ASSIGN_OR_RETURN(auto x, f()); assigns the value or returns the error.
#define KILN_ASSIGN_OR_RETURN(decl, expr)                                  \
  auto KILN_CONCAT_(kiln_aor_, __LINE__) = (expr);                         \
  if (!KILN_CONCAT_(kiln_aor_, __LINE__).ok())                             \
    return KILN_CONCAT_(kiln_aor_, __LINE__).error();                      \
  decl = std::move(KILN_CONCAT_(kiln_aor_, __LINE__)).value()
