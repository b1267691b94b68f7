// Record payload format: layout, repeated keys, numbers, hostile (truncated, bad key) input.
#include "common/protocol/record.h"

#include <gtest/gtest.h>

namespace kiln::protocol {
namespace {

TEST(Record, ExactLayout) {
  Record r;
  r.add("ab", "xyz");
  auto e = r.encode();
  ASSERT_TRUE(e.ok());
  EXPECT_EQ(*e, std::string("\x02" "ab" "\x03\x00\x00\x00" "xyz", 10));
}

TEST(Record, RoundTripRepeatedAndBinary) {
  Record r;
  r.add("arg", "a").add("arg", std::string("b\0c", 3)).add_u64("n", 18446744073709551615ull);
  auto e = r.encode();
  ASSERT_TRUE(e.ok());
  auto d = Record::decode(*e);
  ASSERT_TRUE(d.ok());
  auto all = d->get_all("arg");
  ASSERT_EQ(all.size(), 2u);
  EXPECT_EQ(all[1], std::string_view("b\0c", 3));
  EXPECT_EQ(*d->require_u64("n"), 18446744073709551615ull);
  EXPECT_FALSE(d->get("missing").has_value());
  EXPECT_EQ(*d->get_u64("missing", 7), 7u);
  EXPECT_FALSE(d->require_u64("missing").ok());
}

TEST(Record, NumbersAreStrict) {
  EXPECT_FALSE(parse_u64("").has_value());
  EXPECT_FALSE(parse_u64("-1").has_value());
  EXPECT_FALSE(parse_u64("+1").has_value());
  EXPECT_FALSE(parse_u64("1 ").has_value());
  EXPECT_FALSE(parse_u64("18446744073709551616").has_value());  // 2^64
  EXPECT_EQ(*parse_u64("0"), 0u);
  Record r;
  r.add("n", "12x");
  EXPECT_FALSE(r.get_u64("n", 0).ok());
}

TEST(Record, EncodeRejectsBadKeys) {
  EXPECT_FALSE(Record().add("", "v").encode().ok());
  EXPECT_FALSE(Record().add("Upper", "v").encode().ok());
  EXPECT_FALSE(Record().add(std::string(256, 'a'), "v").encode().ok());
}

TEST(Record, DecodeHostile) {
  EXPECT_TRUE(Record::decode("").ok());
  EXPECT_FALSE(Record::decode(std::string("\x00", 1)).ok());                  // empty key
  EXPECT_FALSE(Record::decode("\x05" "ab").ok());                              // truncated key
  EXPECT_FALSE(Record::decode("\x02" "ab" "\x01\x00").ok());                   // truncated len
  EXPECT_FALSE(Record::decode(std::string("\x02" "ab" "\xff\xff\xff\xff" "x", 8)).ok());
  EXPECT_FALSE(Record::decode(std::string("\x02" "A!" "\x00\x00\x00\x00", 7)).ok());
  // Every prefix of a valid record either decodes or fails cleanly (never reads past the end).
  Record r;
  r.add("key", "value").add("k2", "v2");
  std::string e = *r.encode();
  for (std::size_t n = 0; n <= e.size(); ++n) (void)Record::decode(std::string_view(e).substr(0, n));
}

}  // namespace
}  // namespace kiln::protocol
