// Strict, non-throwing reading of JSON request bodies: typed field getters that name the
// field in every error, and serde-style refusal of unknown fields (Firecracker's
// deny_unknown_fields). A JSON null counts as an absent optional field, as in serde.
#pragma once

#include <cstdint>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/result.h"

namespace kiln::vmm::config {

// Parses JSON text without letting an exception escape. The error reads like Firecracker's:
// "An error occurred when deserializing the json body of a request: <detail>."
Result<nlohmann::json> parse_json_text(std::string_view text);

// Serializes without throwing (invalid UTF-8 is replaced, never an exception).
std::string dump_json(const nlohmann::json& j);

// "string", "number", "boolean", ... for type errors.
std::string_view json_type_name(const nlohmann::json& j);

class ObjectReader {
 public:
  // `path` prefixes field names in errors: "" for a body, "drives[0]." inside a config file.
  // `value` must outlive the reader.
  static Result<ObjectReader> make(const nlohmann::json& value, std::string path,
                                   std::vector<std::string> known_fields);

  // Required fields: missing or null is an error.
  Result<std::string> req_string(std::string_view key);
  Result<bool> req_bool(std::string_view key);
  Result<uint64_t> req_u64(std::string_view key);
  // Optional fields: absent or null gives nullopt.
  Result<std::optional<std::string>> opt_string(std::string_view key);
  Result<std::optional<bool>> opt_bool(std::string_view key);
  Result<std::optional<uint64_t>> opt_u64(std::string_view key);
  // Raw optional member (nullptr when absent or null), e.g. for nested objects and arrays.
  const nlohmann::json* opt_value(std::string_view key);

  // Error when the object has a key outside known_fields.
  Status check_unknown() const;

  // "drives[0].path_on_host"
  std::string field(std::string_view key) const;

 private:
  ObjectReader(const nlohmann::json& value, std::string path, std::vector<std::string> known)
      : value_(&value), path_(std::move(path)), known_(std::move(known)) {}
  const nlohmann::json* find(std::string_view key) const;
  Error type_error(std::string_view key, std::string_view want, const nlohmann::json& got) const;

  const nlohmann::json* value_;
  std::string path_;
  std::vector<std::string> known_;
};

// Path-safe string: non-empty and free of NUL bytes (a NUL would silently cut the path at
// the open(2) boundary).
Status check_path_string(const std::string& field, const std::string& value);

}  // namespace kiln::vmm::config
