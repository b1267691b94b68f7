#include "common/base64/base64.h"

#include <gtest/gtest.h>

#include <string>

namespace kiln::base64 {
namespace {

TEST(Base64, EncodesTheRfcVectorsWithPadding) {  // RFC 4648 section 10
  EXPECT_EQ(encode(""), "");
  EXPECT_EQ(encode("f"), "Zg==");
  EXPECT_EQ(encode("fo"), "Zm8=");
  EXPECT_EQ(encode("foo"), "Zm9v");
  EXPECT_EQ(encode("foob"), "Zm9vYg==");
  EXPECT_EQ(encode("fooba"), "Zm9vYmE=");
  EXPECT_EQ(encode("foobar"), "Zm9vYmFy");
  EXPECT_EQ(encode(std::string("\xff\x00\xfe", 3)), "/wD+");
}

TEST(Base64, DecodesWhatItEncodes) {
  for (const std::string plain : {"", "f", "fo", "foo", "foob", "fooba", "foobar", "kiln:s3cret-pw"}) {
    auto d = decode(encode(plain));
    ASSERT_TRUE(d.ok()) << plain;
    EXPECT_EQ(*d, plain);
  }
  std::string binary(256, '\0');
  for (int i = 0; i < 256; ++i) binary[static_cast<std::size_t>(i)] = static_cast<char>(i);
  auto d = decode(encode(binary));
  ASSERT_TRUE(d.ok());
  EXPECT_EQ(*d, binary);
  EXPECT_EQ(*decode("a2lsbjpzM2NyZXQtcHc="), "kiln:s3cret-pw");
}

TEST(Base64, RefusesMalformedText) {
  EXPECT_FALSE(decode("abc").ok());        // not a multiple of 4
  EXPECT_FALSE(decode("ab!d").ok());       // outside the alphabet
  EXPECT_FALSE(decode("Zg=").ok());
  EXPECT_FALSE(decode(std::string(kMaxDecodeInput + 4, 'A')).ok());  // over the cap
  auto d = decode("Zg==");
  ASSERT_TRUE(d.ok());
  EXPECT_EQ(*d, "f");
  EXPECT_EQ(decode("ab!d").error().message, "malformed base64");
}

}  // namespace
}  // namespace kiln::base64
