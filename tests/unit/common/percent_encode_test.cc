// Percent-encoding: what goes in comes back out; malformed escapes are refused.
#include "common/percent_encode.h"

#include <gtest/gtest.h>

#include <string>

namespace kiln {
namespace {

TEST(PercentEncode, RoundTripsAnyBytes) {
  std::string all;
  for (int c = 0; c < 256; ++c) all += static_cast<char>(c);
  EXPECT_EQ(percent_decode(percent_encode(all)), all);
  EXPECT_EQ(percent_encode("bad/name x"), "bad%2Fname%20x");
}

TEST(PercentDecode, EscapesInEitherCaseAndPlusStays) {
  EXPECT_EQ(percent_decode("%2f%2F+a"), "//+a");
  EXPECT_EQ(percent_decode(""), "");
  for (const char* bad : {"%", "%2", "a%zz", "%g0", "x%"}) EXPECT_FALSE(percent_decode(bad).has_value()) << bad;
}

}  // namespace
}  // namespace kiln
