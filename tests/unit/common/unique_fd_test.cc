#include "common/unique_fd.h"

#include <fcntl.h>
#include <gtest/gtest.h>

#include "common/mapped_region.h"

namespace kiln {
namespace {

bool fd_open(int fd) { return ::fcntl(fd, F_GETFD) != -1; }

TEST(UniqueFd, ClosesOnDestructionAndMove) {
  int raw = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
  ASSERT_GE(raw, 0);
  {
    UniqueFd a(raw);
    UniqueFd b(std::move(a));
    EXPECT_FALSE(a.valid());
    EXPECT_EQ(b.get(), raw);
    EXPECT_TRUE(fd_open(raw));
  }
  EXPECT_FALSE(fd_open(raw));
}

TEST(UniqueFd, ReleaseGivesUpOwnership) {
  int raw = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
  { UniqueFd a(raw); EXPECT_EQ(a.release(), raw); }
  EXPECT_TRUE(fd_open(raw));
  ::close(raw);
}

TEST(MappedRegion, AnonymousIsZeroedAndWritable) {
  auto r = MappedRegion::anonymous(8192);
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->size(), 8192u);
  EXPECT_EQ(r->data()[4096], 0);
  r->data()[4096] = 7;
  MappedRegion moved = std::move(*r);
  EXPECT_EQ(moved.data()[4096], 7);
  EXPECT_FALSE(r->valid());
}

}  // namespace
}  // namespace kiln
