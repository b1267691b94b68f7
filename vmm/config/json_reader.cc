// ObjectReader implementation and the non-throwing JSON entry points.
#include "vmm/config/json_reader.h"

#include <algorithm>
#include <exception>
#include <limits>
#include <optional>
#include <vector>

namespace kiln::vmm::config {

using nlohmann::json;

Result<json> parse_json_text(std::string_view text) {
  // nlohmann reports the byte position only through its exception, so it is caught right
  // here and turned into a value; nothing propagates to callers.
  // serde refuses a repeated field ("duplicate field `x`"); nlohmann would keep the last
  // one silently, so the parser callback tracks the keys of every open object.
  std::vector<std::vector<std::string>> open_objects;
  std::optional<std::string> duplicate;
  auto callback = [&](int, json::parse_event_t event, json& parsed) {
    switch (event) {
      case json::parse_event_t::object_start: open_objects.emplace_back(); break;
      case json::parse_event_t::object_end:
        if (!open_objects.empty()) open_objects.pop_back();
        break;
      case json::parse_event_t::key:
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
  try {
    json j = json::parse(text.begin(), text.end(), callback);
    if (duplicate) {
      return make_error("An error occurred when deserializing the json body of a request: duplicate field `" +
                        *duplicate + "`.");
    }
    return j;
  } catch (const json::parse_error& e) {
    // Drop nlohmann's "[json.exception.parse_error.101] " tag; keep "parse error at line...".
    std::string_view what = e.what();
    if (const size_t tag_end = what.find("] "); what.rfind("[json.exception.", 0) == 0 && tag_end != what.npos) {
      what.remove_prefix(tag_end + 2);
    }
    return make_error("An error occurred when deserializing the json body of a request: " + std::string(what) +
                      (what.empty() || what.back() != '.' ? "." : ""));
  } catch (const std::exception& e) {
    return make_error(std::string("An error occurred when deserializing the json body of a request: ") +
                      e.what() + ".");
  } catch (...) {
    return make_error("An error occurred when deserializing the json body of a request.");
  }
}

std::string dump_json(const json& j) { return j.dump(-1, ' ', false, json::error_handler_t::replace); }

std::string_view json_type_name(const json& j) {
  switch (j.type()) {
    case json::value_t::null: return "null";
    case json::value_t::object: return "object";
    case json::value_t::array: return "array";
    case json::value_t::string: return "string";
    case json::value_t::boolean: return "boolean";
    case json::value_t::number_integer:
    case json::value_t::number_unsigned: return "integer";
    case json::value_t::number_float: return "floating point number";
    case json::value_t::binary: return "binary";
    case json::value_t::discarded: return "invalid value";
  }
  return "unknown";
}

Result<ObjectReader> ObjectReader::make(const json& value, std::string path,
                                        std::vector<std::string> known_fields) {
  if (!value.is_object()) {
    std::string where = path.empty() ? "request body" : path.substr(0, path.size() - 1);
    return make_error(where + ": invalid type: expected an object, got " +
                      std::string(json_type_name(value)));
  }
  return ObjectReader(value, std::move(path), std::move(known_fields));
}

std::string ObjectReader::field(std::string_view key) const { return path_ + std::string(key); }

const json* ObjectReader::find(std::string_view key) const {
  auto it = value_->find(std::string(key));
  if (it == value_->end() || it->is_null()) return nullptr;
  return &*it;
}

Error ObjectReader::type_error(std::string_view key, std::string_view want, const json& got) const {
  return make_error(field(key) + ": invalid type: expected " + std::string(want) + ", got " +
                    std::string(json_type_name(got)));
}

const json* ObjectReader::opt_value(std::string_view key) { return find(key); }

Result<std::optional<std::string>> ObjectReader::opt_string(std::string_view key) {
  const json* v = find(key);
  if (v == nullptr) return std::optional<std::string>();
  if (!v->is_string()) return type_error(key, "a string", *v);
  return std::optional<std::string>(v->get<std::string>());
}

Result<std::optional<bool>> ObjectReader::opt_bool(std::string_view key) {
  const json* v = find(key);
  if (v == nullptr) return std::optional<bool>();
  if (!v->is_boolean()) return type_error(key, "a boolean", *v);
  return std::optional<bool>(v->get<bool>());
}

Result<std::optional<uint64_t>> ObjectReader::opt_u64(std::string_view key) {
  const json* v = find(key);
  if (v == nullptr) return std::optional<uint64_t>();
  if (v->is_number_unsigned()) return std::optional<uint64_t>(v->get<uint64_t>());
  if (v->is_number_integer()) {
    // nlohmann stores non-negative literals as unsigned, so this is a negative number.
    return make_error(field(key) + ": invalid value: must not be negative");
  }
  return type_error(key, "an unsigned integer", *v);
}

Result<std::string> ObjectReader::req_string(std::string_view key) {
  KILN_ASSIGN_OR_RETURN(auto v, opt_string(key));
  if (!v) return make_error(field(key) + ": missing required field");
  return std::move(*v);
}

Result<bool> ObjectReader::req_bool(std::string_view key) {
  KILN_ASSIGN_OR_RETURN(auto v, opt_bool(key));
  if (!v) return make_error(field(key) + ": missing required field");
  return *v;
}

Result<uint64_t> ObjectReader::req_u64(std::string_view key) {
  KILN_ASSIGN_OR_RETURN(auto v, opt_u64(key));
  if (!v) return make_error(field(key) + ": missing required field");
  return *v;
}

Status ObjectReader::check_unknown() const {
  for (const auto& item : value_->items()) {
    if (std::find(known_.begin(), known_.end(), item.key()) != known_.end()) continue;
    std::string msg = field(item.key()) + ": unknown field, expected one of ";
    for (size_t i = 0; i < known_.size(); ++i) {
      if (i) msg += ", ";
      msg += "`" + known_[i] + "`";
    }
    return make_error(msg);
  }
  return ok_status();
}

Status check_path_string(const std::string& field, const std::string& value) {
  if (value.empty()) return make_error(field + ": must not be empty");
  if (value.find('\0') != std::string::npos) return make_error(field + ": must not contain NUL bytes");
  return ok_status();
}

}  // namespace kiln::vmm::config
