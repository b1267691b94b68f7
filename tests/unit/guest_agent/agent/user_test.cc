// resolve_user against passwd/group text: names, numeric ids, groups, hostile lines.
#include "guest-agent/agent/user.h"

#include <gtest/gtest.h>

namespace kiln::agent {
namespace {

constexpr const char* kPasswd =
    "root:x:0:0:root:/root:/bin/sh\n"
    "# comment\n"
    "broken line without fields\n"
    "bad:x:notanumber:1:x:/x:/bin/sh\n"
    "app:x:1000:1000:app:/home/app:/bin/sh\n"
    "huge:x:4294967295:1:x:/x:/bin/sh\n"
    "nohome:x:1001:1001:x::/bin/sh";
constexpr const char* kGroup =
    "root:x:0:\n"
    "app:x:1000:\n"
    "web:x:2000:app,other\n"
    "audio:x:29:other,app\n";

TEST(ResolveUser, EmptyIsRoot) {
  auto c = resolve_user("", kPasswd, kGroup);
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c->uid, 0u);
  EXPECT_EQ(c->gid, 0u);
  EXPECT_EQ(c->home, "/root");
}

TEST(ResolveUser, NameWithSupplementaryGroups) {
  auto c = resolve_user("app", kPasswd, kGroup);
  ASSERT_TRUE(c.ok()) << c.error().message;
  EXPECT_EQ(c->uid, 1000u);
  EXPECT_EQ(c->gid, 1000u);
  EXPECT_EQ(c->home, "/home/app");
  EXPECT_EQ(c->groups, (std::vector<gid_t>{1000, 2000, 29}));
}

TEST(ResolveUser, NumericForms) {
  auto a = resolve_user("1000", kPasswd, kGroup);
  ASSERT_TRUE(a.ok());
  EXPECT_EQ(a->gid, 1000u);  // from the passwd entry
  EXPECT_EQ(a->name, "app");
  auto b = resolve_user("4242", kPasswd, kGroup);  // no entry: allowed, gid 0
  ASSERT_TRUE(b.ok());
  EXPECT_EQ(b->uid, 4242u);
  EXPECT_EQ(b->gid, 0u);
  EXPECT_EQ(b->home, "/");
  auto c = resolve_user("4242:77", kPasswd, kGroup);
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c->gid, 77u);
  auto d = resolve_user("app:web", kPasswd, kGroup);
  ASSERT_TRUE(d.ok());
  EXPECT_EQ(d->gid, 2000u);
  auto e = resolve_user("nohome", kPasswd, kGroup);  // last line without newline, empty home
  ASSERT_TRUE(e.ok());
  EXPECT_EQ(e->uid, 1001u);
  EXPECT_EQ(e->home, "/");
}

TEST(ResolveUser, Errors) {
  EXPECT_FALSE(resolve_user("ghost", kPasswd, kGroup).ok());
  EXPECT_FALSE(resolve_user("app:ghosts", kPasswd, kGroup).ok());
  EXPECT_FALSE(resolve_user("bad", kPasswd, kGroup).ok());   // its line was malformed
  EXPECT_FALSE(resolve_user("huge", kPasswd, kGroup).ok());  // uid -1 is rejected
  EXPECT_FALSE(resolve_user(":", kPasswd, kGroup).ok());
  EXPECT_FALSE(resolve_user("app:", kPasswd, kGroup).ok());
  EXPECT_FALSE(resolve_user("4294967295", kPasswd, kGroup).ok() &&
               resolve_user("4294967295", kPasswd, kGroup)->uid == 4294967295u);
}

TEST(ResolveUser, EmptyFiles) {
  EXPECT_TRUE(resolve_user("0", "", "").ok());
  EXPECT_FALSE(resolve_user("root", "", "").ok());
}

}  // namespace
}  // namespace kiln::agent
