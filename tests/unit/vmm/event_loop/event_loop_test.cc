// EventLoop: dispatch, modify/remove (also from inside callbacks), cross-thread stop/post.
#include "vmm/event_loop/event_loop.h"

#include <gtest/gtest.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <thread>

namespace kiln::vmm {
namespace {

UniqueFd make_eventfd() { return UniqueFd(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)); }
void bump(int fd) {
  uint64_t one = 1;
  ASSERT_EQ(::write(fd, &one, 8), 8);
}
void drain(int fd) {
  uint64_t v;
  [[maybe_unused]] auto n = ::read(fd, &v, 8);
}

TEST(EventLoop, DispatchesReadyFd) {
  auto loop = EventLoop::create();
  ASSERT_TRUE(loop.ok());
  UniqueFd efd = make_eventfd();
  int calls = 0;
  uint32_t seen = 0;
  ASSERT_TRUE((*loop)->add(efd.get(), EPOLLIN, [&](uint32_t ev) {
    ++calls;
    seen = ev;
    drain(efd.get());
  }).ok());
  EXPECT_EQ(*(*loop)->run_once(0), 0);
  bump(efd.get());
  EXPECT_EQ(*(*loop)->run_once(1000), 1);
  EXPECT_EQ(calls, 1);
  EXPECT_TRUE(seen & EPOLLIN);
}

TEST(EventLoop, DuplicateAddAndUnknownRemoveFail) {
  auto loop = EventLoop::create();
  ASSERT_TRUE(loop.ok());
  UniqueFd efd = make_eventfd();
  ASSERT_TRUE((*loop)->add(efd.get(), EPOLLIN, [](uint32_t) {}).ok());
  EXPECT_FALSE((*loop)->add(efd.get(), EPOLLIN, [](uint32_t) {}).ok());
  EXPECT_TRUE((*loop)->remove(efd.get()).ok());
  EXPECT_FALSE((*loop)->remove(efd.get()).ok());
  EXPECT_FALSE((*loop)->modify(efd.get(), EPOLLIN).ok());
}

TEST(EventLoop, ModifyChangesInterest) {
  auto loop = EventLoop::create();
  ASSERT_TRUE(loop.ok());
  int sv[2];
  ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0, sv), 0);
  UniqueFd a(sv[0]), b(sv[1]);
  int outs = 0;
  ASSERT_TRUE((*loop)->add(a.get(), 0, [&](uint32_t ev) { if (ev & EPOLLOUT) ++outs; }).ok());
  EXPECT_EQ(*(*loop)->run_once(0), 0);
  ASSERT_TRUE((*loop)->modify(a.get(), EPOLLOUT).ok());
  EXPECT_EQ(*(*loop)->run_once(1000), 1);
  EXPECT_EQ(outs, 1);
}

TEST(EventLoop, CallbackRemovedEarlierInBatchIsNotCalled) {
  auto loop = EventLoop::create();
  ASSERT_TRUE(loop.ok());
  UniqueFd e1 = make_eventfd(), e2 = make_eventfd();
  int calls = 0;
  // Whichever runs first removes the other; exactly one must run.
  ASSERT_TRUE((*loop)->add(e1.get(), EPOLLIN, [&](uint32_t) {
    ++calls;
    (void)(*loop)->remove(e2.get());
    (void)(*loop)->remove(e1.get());
  }).ok());
  ASSERT_TRUE((*loop)->add(e2.get(), EPOLLIN, [&](uint32_t) {
    ++calls;
    (void)(*loop)->remove(e1.get());
    (void)(*loop)->remove(e2.get());
  }).ok());
  bump(e1.get());
  bump(e2.get());
  (void)(*loop)->run_once(1000);
  EXPECT_EQ(calls, 1);
}

TEST(EventLoop, StopAndPostFromAnotherThread) {
  auto loop_r = EventLoop::create();
  ASSERT_TRUE(loop_r.ok());
  EventLoop& loop = **loop_r;
  std::thread::id ran_on;
  std::thread t([&] { ASSERT_TRUE(loop.run().ok()); });
  loop.post([&] {
    ran_on = std::this_thread::get_id();
    loop.stop();
  });
  t.join();
  EXPECT_NE(ran_on, std::this_thread::get_id());
  EXPECT_TRUE(loop.stopped());
}

}  // namespace
}  // namespace kiln::vmm
