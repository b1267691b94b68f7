// common/json/field_reader.h: every error kind names its field path in one style, the
// null rule, unknown-field refusal and the non-throwing parse.
#include "common/json/field_reader.h"

#include <gtest/gtest.h>

namespace kiln::json {
namespace {

Json J(std::string_view text) { return parse(text).value(); }

template <typename T>
std::string err(const FieldResult<T>& r) {
  return r.ok() ? std::string("<ok>") : r.error().message;
}

TEST(FieldError, MessageIsPathThenReason) {
  FieldError e = field_error("machine-config.vcpu_count", "must be an integer from 1 to 32");
  EXPECT_EQ(e.message, "machine-config.vcpu_count: must be an integer from 1 to 32");
  EXPECT_EQ(e.path, "machine-config.vcpu_count");
  EXPECT_EQ(e.reason, "must be an integer from 1 to 32");
  EXPECT_EQ(e.sys_errno, 0);
  EXPECT_EQ(field_error("", "must be a JSON object").message, "must be a JSON object");
  EXPECT_EQ(member_path("", "env"), "env");
  EXPECT_EQ(member_path("drives[0]", "drive_id"), "drives[0].drive_id");
  EXPECT_EQ(element_path("args", 1), "args[1]");
}

// A FieldResult passes through KILN_TRY into a plain Status, keeping the message.
Status plain(const Json& j) {
  KILN_ASSIGN_OR_RETURN(auto r, ObjectReader::make(j, "outer"));
  KILN_TRY(r.req_bool("flag"));
  return ok_status();
}

TEST(FieldResult, ConvertsToPlainResults) {
  Status st = plain(J(R"({"flag": 1})"));
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.error().message, "outer.flag: invalid type: expected a boolean, got integer");
  Result<bool> r = read_bool(J("true"), "x");
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE(*r);
  Status from_field = FieldStatus(field_error("a", "b"));
  EXPECT_EQ(from_field.error().message, "a: b");
  EXPECT_TRUE(Status(FieldStatus()).ok());
}

TEST(Parse, NeverThrowsAndReportsWhere) {
  for (const char* bad : {"", "{", "{\"a\": }", "[1, 2", "nul", "{\"a\": 1} x"}) {
    auto r = parse(bad);
    ASSERT_FALSE(r.ok()) << bad;
    EXPECT_EQ(r.error().path, "");
    EXPECT_EQ(r.error().message.rfind("parse error at line", 0), 0u) << r.error().message;
  }
  EXPECT_TRUE(parse(R"({"a": [1, 2.5, null]})").ok());
  std::string deep(100000, '[');
  EXPECT_FALSE(parse(deep).ok());
}

TEST(Parse, DuplicateKeysAreRefusedOnRequest) {
  const char* dup = R"({"a": {"b": 1, "b": 2}})";
  EXPECT_TRUE(parse(dup).ok());  // nlohmann keeps the last one
  auto r = parse(dup, ParseOptions{.refuse_duplicate_keys = true});
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().message, "duplicate field `b`");
  EXPECT_TRUE(parse(R"({"a": {"b": 1}, "c": {"b": 2}})", ParseOptions{.refuse_duplicate_keys = true}).ok());
}

TEST(Dump, ReplacesInvalidUtf8InsteadOfThrowing) {
  Json j = std::string("\xff");
  EXPECT_EQ(dump(j), "\"\xEF\xBF\xBD\"");
  EXPECT_EQ(type_name(J("1.5")), "floating point number");
  EXPECT_EQ(type_name(J("-1")), "integer");
}

TEST(ObjectReader, RequiredFieldsAndTypeErrors) {
  const Json r_json = J(R"({"s": "x", "b": true, "n": 7, "neg": -1, "f": 1.5, "z": null})");
  auto r = ObjectReader::make(r_json, "o");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(*r->req_string("s"), "x");
  EXPECT_TRUE(*r->req_bool("b"));
  EXPECT_EQ(*r->req_u64("n"), 7u);
  EXPECT_EQ(err(r->req_string("missing")), "o.missing: missing required field");
  EXPECT_EQ(err(r->req_string("z")), "o.z: missing required field");  // null counts as absent
  EXPECT_EQ(err(r->req_string("n")), "o.n: invalid type: expected a string, got integer");
  EXPECT_EQ(err(r->req_bool("s")), "o.s: invalid type: expected a boolean, got string");
  EXPECT_EQ(err(r->req_u64("neg")), "o.neg: invalid value: must not be negative");
  EXPECT_EQ(err(r->req_u64("f")), "o.f: invalid type: expected an unsigned integer, got floating point number");
}

TEST(ObjectReader, OptionalFieldsAreNulloptWhenAbsentOrNull) {
  const Json r_json = J(R"({"z": null, "s": "x"})");
  auto r = ObjectReader::make(r_json, "");
  ASSERT_TRUE(r.ok());
  EXPECT_FALSE(r->opt_string("z")->has_value());
  EXPECT_FALSE(r->opt_bool("absent")->has_value());
  EXPECT_FALSE(r->opt_u64("absent")->has_value());
  EXPECT_FALSE(r->opt_strings("z", 4)->has_value());
  EXPECT_FALSE(r->opt_object("z")->has_value());
  EXPECT_EQ(*r->opt_array("z"), nullptr);
  EXPECT_EQ(r->opt_value("z"), nullptr);
  EXPECT_FALSE(r->has("z"));
  EXPECT_EQ(**r->opt_string("s"), "x");
  EXPECT_EQ(err(r->opt_bool("s")), "s: invalid type: expected a boolean, got string");
}

TEST(ObjectReader, NullsCanBeValuesOfTheWrongType) {
  const Json r_json = J(R"({"z": null})");
  auto r = ObjectReader::make(r_json, "", {}, Nulls::kValue);
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE(r->has("z"));
  EXPECT_EQ(err(r->opt_string("z")), "z: invalid type: expected a string, got null");
  EXPECT_EQ(err(r->opt_uint_in("z", 0, 5)), "z: must be an integer from 0 to 5");
}

TEST(ObjectReader, RangedIntegers) {
  const Json r_json = J(R"({"lo": 0, "ok": 3, "hi": 33, "neg": -3, "f": 2.0, "s": "2"})");
  auto r = ObjectReader::make(r_json, "machine-config");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(**r->opt_uint_in("ok", 1, 32), 3u);
  for (const char* key : {"lo", "hi", "neg", "f", "s"}) {
    EXPECT_EQ(err(r->opt_uint_in(key, 1, 32)), "machine-config." + std::string(key) + ": must be an integer from 1 to 32");
  }
  EXPECT_EQ(err(read_uint_in(J("18446744073709551615"), "n", 0, 10)), "n: must be an integer from 0 to 10");
}

TEST(ObjectReader, StringRules) {
  const Json r_json = J(R"({"long": "abcdef", "nul": "a\u0000b"})");
  auto r = ObjectReader::make(r_json, "");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(err(r->opt_string("long", {.max_bytes = 5})), "long: longer than 5 bytes");
  EXPECT_TRUE(r->opt_string("long", {.max_bytes = 6}).ok());
  EXPECT_EQ(err(r->opt_string("nul", {.allow_nul = false})), "nul: must not contain NUL bytes");
  EXPECT_EQ((*r->opt_string("nul"))->size(), 3u);  // allowed unless refused
}

TEST(ObjectReader, StringArraysNameTheBadElement) {
  const Json r_json = J(R"({"args": ["a", 1], "ok": ["x", "y"], "obj": {}, "nul": ["\u0000"]})");
  auto r = ObjectReader::make(r_json, "");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(**r->opt_strings("ok", 2), (std::vector<std::string>{"x", "y"}));
  EXPECT_EQ(err(r->opt_strings("ok", 1)), "ok: has more than 1 entries");
  EXPECT_EQ(err(r->opt_strings("args", 8)), "args[1]: invalid type: expected a string, got integer");
  EXPECT_EQ(err(r->opt_strings("obj", 8)), "obj: invalid type: expected an array, got object");
  EXPECT_EQ(err(r->opt_strings("nul", 8, {.allow_nul = false})), "nul[0]: must not contain NUL bytes");
}

TEST(ObjectReader, NestedObjectsAndArraysCarryTheirPath) {
  const Json r_json = J(R"({"q": {"max": "x", "extra": 1}, "list": [1], "notlist": 1, "notobj": []})");
  auto r = ObjectReader::make(r_json, "t[0]");
  ASSERT_TRUE(r.ok());
  auto q = r->opt_object("q", {"max"});
  ASSERT_TRUE(q.ok());
  ASSERT_TRUE(q->has_value());
  EXPECT_EQ((*q)->path(), "t[0].q");
  EXPECT_EQ(err((*q)->req_u64("max")), "t[0].q.max: invalid type: expected an unsigned integer, got string");
  EXPECT_EQ((*q)->check_unknown().error().message, "t[0].q.extra: unknown field, expected one of `max`");
  EXPECT_EQ(err(r->opt_object("notobj")), "t[0].notobj: invalid type: expected an object, got array");
  auto list = r->opt_array("list");
  ASSERT_TRUE(list.ok());
  EXPECT_EQ((*list)->size(), 1u);
  EXPECT_EQ(err(r->opt_array("notlist")), "t[0].notlist: invalid type: expected an array, got integer");
}

TEST(ObjectReader, UnknownFieldsAreRefusedOnlyWhenKnownFieldsAreGiven) {
  Json j = J(R"({"vcpu_count": 1, "ht_enabled": true})");
  auto strict = ObjectReader::make(j, "", {"vcpu_count", "mem_size_mib"});
  ASSERT_TRUE(strict.ok());
  auto st = strict->check_unknown();
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.error().path, "ht_enabled");
  EXPECT_EQ(st.error().message, "ht_enabled: unknown field, expected one of `vcpu_count`, `mem_size_mib`");
  auto all_known = ObjectReader::make(j, "", {"vcpu_count", "ht_enabled"});
  EXPECT_TRUE(all_known->check_unknown().ok());
}

TEST(ObjectReader, RefusesNonObjectsAndMakesCallerErrors) {
  EXPECT_EQ(err(ObjectReader::make(J("[1, 2]"), "")), "invalid type: expected an object, got array");
  EXPECT_EQ(err(ObjectReader::make(J("\"x\""), "drives[0]")), "drives[0]: invalid type: expected an object, got string");
  const Json r_json = J("{}");
  auto r = ObjectReader::make(r_json, "tenants[1]");
  FieldError e = r->error("name", "duplicate tenant a");
  EXPECT_EQ(e.message, "tenants[1].name: duplicate tenant a");
  EXPECT_EQ(e.path, "tenants[1].name");
}

}  // namespace
}  // namespace kiln::json
