#include "common/result.h"

#include <gtest/gtest.h>

namespace kiln {
namespace {

Result<int> parse_positive(int v) {
  if (v <= 0) return make_error("not positive: " + std::to_string(v));
  return v;
}

Result<int> doubled(int v) {
  KILN_ASSIGN_OR_RETURN(int p, parse_positive(v));
  return p * 2;
}

Status check(int v) {
  KILN_TRY(parse_positive(v));
  return ok_status();
}

TEST(Result, HoldsValueOrError) {
  auto good = parse_positive(3);
  ASSERT_TRUE(good.ok());
  EXPECT_EQ(*good, 3);
  auto bad = parse_positive(-1);
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.error().message, "not positive: -1");
}

TEST(Result, MacrosPropagate) {
  EXPECT_EQ(doubled(4).value(), 8);
  EXPECT_EQ(doubled(0).error().message, "not positive: 0");
  EXPECT_TRUE(check(1).ok());
  EXPECT_FALSE(check(-5).ok());
}

TEST(Result, ErrnoErrorCarriesErrno) {
  Error e = errno_error("open /nope", ENOENT);
  EXPECT_EQ(e.sys_errno, ENOENT);
  EXPECT_NE(e.message.find("No such file"), std::string::npos);
  EXPECT_EQ(e.wrap("loading").message.rfind("loading: open /nope", 0), 0u);
}

TEST(ResultDeathTest, WrongAccessAborts) {
  auto bad = parse_positive(-1);
  EXPECT_DEATH((void)bad.value(), "holds");
}

}  // namespace
}  // namespace kiln
