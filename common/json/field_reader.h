// kiln_json: the one strict JSON field reader. Typed required/optional fields, refusal of
// unknown fields, non-throwing parsing, and one error (FieldError) that names the field path:
// "machine-config.vcpu_count: invalid type: expected an unsigned integer, got string".
// Depends on nlohmann/json, so it is its own library: the static guest agent does not link it.
#pragma once

#include <cstddef>
#include <cstdint>
#include <limits>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/result.h"

namespace kiln::json {

using Json = nlohmann::json;

// The reader's error. `message` (inherited, so a FieldError is also a plain Error) is
// "PATH: REASON", or just REASON for the document itself (empty path).
struct FieldError : Error {
  std::string path;  // "tenants[0].quotas.max_functions"
  std::string reason;  // "must be an integer from 0 to 1000000"
};
FieldError field_error(std::string path, std::string reason);

// Paths: member_path("drives[0]", "drive_id") == "drives[0].drive_id",
// member_path("", "env") == "env", element_path("args", 1) == "args[1]".
std::string member_path(std::string_view parent, std::string_view key);
std::string element_path(std::string_view parent, std::size_t index);

// A value or a FieldError: a Result<T> (so it converts to one, and works with KILN_TRY and
// KILN_ASSIGN_OR_RETURN in functions returning either) whose error() keeps the field path.
template <typename T>
class [[nodiscard]] FieldResult : public Result<T> {
 public:
  FieldResult(T value) : Result<T>(std::move(value)) {}  // NOLINT: implicit by design
  FieldResult(FieldError error) : Result<T>(static_cast<const Error&>(error)), error_(std::move(error)) {}  // NOLINT
  const FieldError& error() const {
    (void)Result<T>::error();  // aborts when this holds a value
    return error_;
  }

 private:
  FieldError error_;
};

template <>
class [[nodiscard]] FieldResult<void> : public Status {
 public:
  FieldResult() = default;
  FieldResult(FieldError error) : Status(static_cast<const Error&>(error)), error_(std::move(error)) {}  // NOLINT
  const FieldError& error() const {
    (void)Status::error();
    return error_;
  }

 private:
  FieldError error_;
};

using FieldStatus = FieldResult<void>;

// ---- text

struct ParseOptions {
  // serde refuses a repeated key ("duplicate field `x`"); nlohmann would keep the last one.
  bool refuse_duplicate_keys = false;
};
// Never throws. Errors have an empty path and nlohmann's reason without its exception tag:
// "parse error at line 1, column 2: syntax error while parsing value - ...".
FieldResult<Json> parse(std::string_view text, const ParseOptions& options = {});
// Serializes without throwing (invalid UTF-8 is replaced).
std::string dump(const Json& j, int indent = -1);
// "string", "integer", "object", ... as the type errors name them.
std::string_view type_name(const Json& j);

// ---- single values (array elements, map values; object members go through ObjectReader)

struct StringRules {
  std::size_t max_bytes = std::numeric_limits<std::size_t>::max();  // "longer than N bytes"
  bool allow_nul = true;  // false: "must not contain NUL bytes"
};

FieldResult<std::string> read_string(const Json& v, const std::string& path, const StringRules& rules = {});
FieldResult<bool> read_bool(const Json& v, const std::string& path);
// A non-negative integer; a float or a negative number is refused.
FieldResult<std::uint64_t> read_u64(const Json& v, const std::string& path);
// An integer in [lo, hi]; anything else: "must be an integer from LO to HI".
FieldResult<std::uint64_t> read_uint_in(const Json& v, const std::string& path, std::uint64_t lo, std::uint64_t hi);
// An array of at most `max_entries` strings; a bad element names its index ("args[1]").
FieldResult<std::vector<std::string>> read_strings(const Json& v, const std::string& path, std::size_t max_entries,
                                                   const StringRules& rules = {});

// How a JSON null member counts: absent (serde's Option, the default) or a value of the wrong
// type ("invalid type: expected a string, got null").
enum class Nulls { kAbsent, kValue };

// Reads the members of one object. Strict when given its known fields: check_unknown() then
// refuses any other key. The object must outlive the reader.
class ObjectReader {
 public:
  static FieldResult<ObjectReader> make(const Json& value, std::string path, std::vector<std::string> known = {},
                                        Nulls nulls = Nulls::kAbsent);

  const std::string& path() const { return path_; }
  const Json& value() const { return *value_; }
  std::string field(std::string_view key) const { return member_path(path_, key); }
  // The error for a member, for checks the caller makes itself.
  FieldError error(std::string_view key, std::string reason) const;

  // The member, or nullptr when absent (or null, under Nulls::kAbsent).
  const Json* opt_value(std::string_view key) const;
  bool has(std::string_view key) const { return opt_value(key) != nullptr; }

  // Required: absent (or null under Nulls::kAbsent) is "missing required field".
  FieldResult<std::string> req_string(std::string_view key, const StringRules& rules = {}) const;
  FieldResult<bool> req_bool(std::string_view key) const;
  FieldResult<std::uint64_t> req_u64(std::string_view key) const;
  FieldResult<std::optional<std::string>> opt_string(std::string_view key, const StringRules& rules = {}) const;
  FieldResult<std::optional<bool>> opt_bool(std::string_view key) const;
  FieldResult<std::optional<std::uint64_t>> opt_u64(std::string_view key) const;
  FieldResult<std::optional<std::uint64_t>> opt_uint_in(std::string_view key, std::uint64_t lo,
                                                        std::uint64_t hi) const;
  FieldResult<std::optional<std::vector<std::string>>> opt_strings(std::string_view key, std::size_t max_entries,
                                                                   const StringRules& rules = {}) const;
  // A nested object read with its own known fields (same null rule); nullopt when absent.
  FieldResult<std::optional<ObjectReader>> opt_object(std::string_view key, std::vector<std::string> known = {}) const;
  // An array member; nullptr when absent.
  FieldResult<const Json*> opt_array(std::string_view key) const;

  // "KEY: unknown field, expected one of `a`, `b`" for the first key outside the known fields.
  FieldStatus check_unknown() const;

 private:
  ObjectReader(const Json& value, std::string path, std::vector<std::string> known, Nulls nulls)
      : value_(&value), path_(std::move(path)), known_(std::move(known)), nulls_(nulls) {}
  FieldError missing(std::string_view key) const;

  const Json* value_;
  std::string path_;
  std::vector<std::string> known_;
  Nulls nulls_;
};

}  // namespace kiln::json
