// The strict JSON field reader of field_reader.h and its non-throwing parse.
#include "common/json/field_reader.h"

#include <algorithm>
#include <exception>

namespace kiln::json {

FieldError field_error(std::string path, std::string reason) {
  FieldError e;
  e.message = path.empty() ? reason : path + ": " + reason;
  e.path = std::move(path);
  e.reason = std::move(reason);
  return e;
}

std::string member_path(std::string_view parent, std::string_view key) {
  if (parent.empty()) return std::string(key);
  std::string s(parent);
  s.append(".").append(key);
  return s;
}

std::string element_path(std::string_view parent, std::size_t index) {
  return std::string(parent) + "[" + std::to_string(index) + "]";
}

namespace {

FieldError type_error(const std::string& path, std::string_view want, const Json& got) {
  return field_error(path, "invalid type: expected " + std::string(want) + ", got " + std::string(type_name(got)));
}

}  // namespace

// ---------------------------------------------------------------- text

FieldResult<Json> parse(std::string_view text, const ParseOptions& options) {
  // The keys of every open object, to find a repeated key (the parser callback sees each key).
  std::vector<std::vector<std::string>> open_objects;
  std::optional<std::string> duplicate;
  auto callback = [&](int, Json::parse_event_t event, Json& parsed) {
    switch (event) {
      case Json::parse_event_t::object_start: open_objects.emplace_back(); break;
      case Json::parse_event_t::object_end:
        if (!open_objects.empty()) open_objects.pop_back();
        break;
      case Json::parse_event_t::key:
        if (!open_objects.empty() && parsed.is_string()) {
          auto& keys = open_objects.back();
          const auto& key = parsed.get_ref<const std::string&>();
          if (std::find(keys.begin(), keys.end(), key) != keys.end()) {
            if (!duplicate) duplicate = key;
          } else {
            keys.push_back(key);
          }
        }
        break;
      default: break;
    }
    return true;
  };
  // nlohmann reports the position only through its exception, so it is caught right here.
  try {
    Json j = options.refuse_duplicate_keys ? Json::parse(text.begin(), text.end(), callback)
                                           : Json::parse(text.begin(), text.end());
    if (duplicate) return field_error("", "duplicate field `" + *duplicate + "`");
    return j;
  } catch (const Json::parse_error& e) {
    // Drop the "[json.exception.parse_error.101] " tag; keep "parse error at line ...".
    std::string_view what = e.what();
    if (const std::size_t tag_end = what.find("] "); what.rfind("[json.exception.", 0) == 0 && tag_end != what.npos) {
      what.remove_prefix(tag_end + 2);
    }
    return field_error("", std::string(what));
  } catch (const std::exception& e) {
    return field_error("", e.what());
  } catch (...) {
    return field_error("", "invalid JSON");
  }
}

std::string dump(const Json& j, int indent) { return j.dump(indent, ' ', false, Json::error_handler_t::replace); }

std::string_view type_name(const Json& j) {
  switch (j.type()) {
    case Json::value_t::null: return "null";
    case Json::value_t::object: return "object";
    case Json::value_t::array: return "array";
    case Json::value_t::string: return "string";
    case Json::value_t::boolean: return "boolean";
    case Json::value_t::number_integer:
    case Json::value_t::number_unsigned: return "integer";
    case Json::value_t::number_float: return "floating point number";
    case Json::value_t::binary: return "binary";
    case Json::value_t::discarded: return "invalid value";
  }
  return "unknown";
}

// ---------------------------------------------------------------- single values

FieldResult<std::string> read_string(const Json& v, const std::string& path, const StringRules& rules) {
  if (!v.is_string()) return type_error(path, "a string", v);
  const auto& s = v.get_ref<const std::string&>();
  if (s.size() > rules.max_bytes) return field_error(path, "longer than " + std::to_string(rules.max_bytes) + " bytes");
  if (!rules.allow_nul && s.find('\0') != std::string::npos) return field_error(path, "must not contain NUL bytes");
  return s;
}

FieldResult<bool> read_bool(const Json& v, const std::string& path) {
  if (!v.is_boolean()) return type_error(path, "a boolean", v);
  return v.get<bool>();
}

FieldResult<std::uint64_t> read_u64(const Json& v, const std::string& path) {
  if (v.is_number_unsigned()) return v.get<std::uint64_t>();
  // nlohmann stores non-negative literals as unsigned, so this is a negative number.
  if (v.is_number_integer()) return field_error(path, "invalid value: must not be negative");
  return type_error(path, "an unsigned integer", v);
}

FieldResult<std::uint64_t> read_uint_in(const Json& v, const std::string& path, std::uint64_t lo, std::uint64_t hi) {
  if (!v.is_number_unsigned() || v.get<std::uint64_t>() < lo || v.get<std::uint64_t>() > hi) {
    return field_error(path, "must be an integer from " + std::to_string(lo) + " to " + std::to_string(hi));
  }
  return v.get<std::uint64_t>();
}

FieldResult<std::vector<std::string>> read_strings(const Json& v, const std::string& path, std::size_t max_entries,
                                                   const StringRules& rules) {
  if (!v.is_array()) return type_error(path, "an array", v);
  if (v.size() > max_entries) return field_error(path, "has more than " + std::to_string(max_entries) + " entries");
  std::vector<std::string> out;
  out.reserve(v.size());
  for (std::size_t i = 0; i < v.size(); ++i) {
    KILN_ASSIGN_OR_RETURN(std::string s, read_string(v[i], element_path(path, i), rules));
    out.push_back(std::move(s));
  }
  return out;
}

// ---------------------------------------------------------------- objects

FieldResult<ObjectReader> ObjectReader::make(const Json& value, std::string path, std::vector<std::string> known,
                                             Nulls nulls) {
  if (!value.is_object()) return type_error(path, "an object", value);
  return ObjectReader(value, std::move(path), std::move(known), nulls);
}

FieldError ObjectReader::error(std::string_view key, std::string reason) const {
  return field_error(field(key), std::move(reason));
}

FieldError ObjectReader::missing(std::string_view key) const { return error(key, "missing required field"); }

const Json* ObjectReader::opt_value(std::string_view key) const {
  auto it = value_->find(std::string(key));
  if (it == value_->end() || (nulls_ == Nulls::kAbsent && it->is_null())) return nullptr;
  return &*it;
}

FieldResult<std::optional<std::string>> ObjectReader::opt_string(std::string_view key, const StringRules& rules) const {
  const Json* v = opt_value(key);
  if (v == nullptr) return std::optional<std::string>();
  KILN_ASSIGN_OR_RETURN(std::string s, read_string(*v, field(key), rules));
  return std::optional<std::string>(std::move(s));
}

FieldResult<std::optional<bool>> ObjectReader::opt_bool(std::string_view key) const {
  const Json* v = opt_value(key);
  if (v == nullptr) return std::optional<bool>();
  KILN_ASSIGN_OR_RETURN(bool b, read_bool(*v, field(key)));
  return std::optional<bool>(b);
}

FieldResult<std::optional<std::uint64_t>> ObjectReader::opt_u64(std::string_view key) const {
  const Json* v = opt_value(key);
  if (v == nullptr) return std::optional<std::uint64_t>();
  KILN_ASSIGN_OR_RETURN(std::uint64_t n, read_u64(*v, field(key)));
  return std::optional<std::uint64_t>(n);
}

FieldResult<std::optional<std::uint64_t>> ObjectReader::opt_uint_in(std::string_view key, std::uint64_t lo,
                                                                    std::uint64_t hi) const {
  const Json* v = opt_value(key);
  if (v == nullptr) return std::optional<std::uint64_t>();
  KILN_ASSIGN_OR_RETURN(std::uint64_t n, read_uint_in(*v, field(key), lo, hi));
  return std::optional<std::uint64_t>(n);
}

FieldResult<std::optional<std::vector<std::string>>> ObjectReader::opt_strings(std::string_view key,
                                                                               std::size_t max_entries,
                                                                               const StringRules& rules) const {
  const Json* v = opt_value(key);
  if (v == nullptr) return std::optional<std::vector<std::string>>();
  KILN_ASSIGN_OR_RETURN(auto list, read_strings(*v, field(key), max_entries, rules));
  return std::optional<std::vector<std::string>>(std::move(list));
}

FieldResult<std::string> ObjectReader::req_string(std::string_view key, const StringRules& rules) const {
  KILN_ASSIGN_OR_RETURN(auto v, opt_string(key, rules));
  if (!v) return missing(key);
  return std::move(*v);
}

FieldResult<bool> ObjectReader::req_bool(std::string_view key) const {
  KILN_ASSIGN_OR_RETURN(auto v, opt_bool(key));
  if (!v) return missing(key);
  return *v;
}

FieldResult<std::uint64_t> ObjectReader::req_u64(std::string_view key) const {
  KILN_ASSIGN_OR_RETURN(auto v, opt_u64(key));
  if (!v) return missing(key);
  return *v;
}

FieldResult<std::optional<ObjectReader>> ObjectReader::opt_object(std::string_view key,
                                                                  std::vector<std::string> known) const {
  const Json* v = opt_value(key);
  if (v == nullptr) return std::optional<ObjectReader>();
  KILN_ASSIGN_OR_RETURN(ObjectReader r, make(*v, field(key), std::move(known), nulls_));
  return std::optional<ObjectReader>(std::move(r));
}

FieldResult<const Json*> ObjectReader::opt_array(std::string_view key) const {
  const Json* v = opt_value(key);
  if (v != nullptr && !v->is_array()) return type_error(field(key), "an array", *v);
  return v;
}

FieldStatus ObjectReader::check_unknown() const {
  for (const auto& item : value_->items()) {
    if (std::find(known_.begin(), known_.end(), item.key()) != known_.end()) continue;
    std::string reason = "unknown field, expected one of ";
    for (std::size_t i = 0; i < known_.size(); ++i) {
      if (i) reason += ", ";
      reason += "`" + known_[i] + "`";
    }
    return error(item.key(), std::move(reason));
  }
  return {};
}

}  // namespace kiln::json
