// EventLoop: dispatch, modify/remove (also from inside callbacks), cross-thread stop/post.
#include "common/event_loop/event_loop.h"

#include <gtest/gtest.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <future>
#include <string>
#include <thread>
#include <vector>

namespace kiln {
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

TEST(EventLoop, RemoveIfPresentTakesRegisteredAndUnknownFds) {
  auto loop = EventLoop::create();
  ASSERT_TRUE(loop.ok());
  UniqueFd efd = make_eventfd();
  (*loop)->remove_if_present(efd.get());  // never registered: fine
  ASSERT_TRUE((*loop)->add(efd.get(), EPOLLIN, [](uint32_t) {}).ok());
  (*loop)->remove_if_present(efd.get());
  EXPECT_FALSE((*loop)->contains(efd.get()));
  EXPECT_TRUE((*loop)->add(efd.get(), EPOLLIN, [](uint32_t) {}).ok());  // really gone from epoll too
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

// Stops `loop` and records a failure if the test's own stop never came (a broken loop would
// otherwise hang the test until CTest's timeout).
EventLoop::TimerId add_watchdog(EventLoop& loop, bool* fired) {
  return loop.add_timer_ms(10000, [&loop, fired] {
    *fired = true;
    loop.stop();
  });
}

TEST(EventLoop, DefaultConstructedLoopWorksAfterInitOnce) {
  EventLoop loop;
  ASSERT_TRUE(loop.init().ok());
  EXPECT_FALSE(loop.init().ok());
  UniqueFd efd = make_eventfd();
  int calls = 0;
  ASSERT_TRUE(loop.add(efd.get(), EPOLLIN, [&](uint32_t) {
    ++calls;
    drain(efd.get());
  }).ok());
  EXPECT_TRUE(loop.contains(efd.get()));
  bump(efd.get());
  EXPECT_EQ(*loop.run_once(1000), 1);
  EXPECT_EQ(calls, 1);
  EXPECT_TRUE(loop.remove(efd.get()).ok());
  EXPECT_FALSE(loop.contains(efd.get()));
}

TEST(EventLoop, StaleEventForRemovedAndReAddedFdIsDropped) {
  auto loop = EventLoop::create();
  ASSERT_TRUE(loop.ok());
  UniqueFd e1 = make_eventfd(), e2 = make_eventfd();
  int calls = 0, fresh_calls = 0;
  // Whichever runs first re-registers the other under a new token: the other's event already
  // in this batch carries the old token and must not reach the new callback.
  auto re_add = [&](int other) {
    ++calls;
    (void)(*loop)->remove(other);
    ASSERT_TRUE((*loop)->add(other, EPOLLIN, [&](uint32_t) { ++fresh_calls; }).ok());
  };
  ASSERT_TRUE((*loop)->add(e1.get(), EPOLLIN, [&](uint32_t) { re_add(e2.get()); drain(e1.get()); }).ok());
  ASSERT_TRUE((*loop)->add(e2.get(), EPOLLIN, [&](uint32_t) { re_add(e1.get()); drain(e2.get()); }).ok());
  bump(e1.get());
  bump(e2.get());
  EXPECT_EQ(*(*loop)->run_once(1000), 1);
  EXPECT_EQ(calls, 1);
  EXPECT_EQ(fresh_calls, 0);
  // The re-added fd is still readable: its new callback runs on the next iteration.
  EXPECT_EQ(*(*loop)->run_once(1000), 1);
  EXPECT_EQ(fresh_calls, 1);
}

TEST(EventLoop, TimersRunInDeadlineOrder) {
  auto loop = EventLoop::create();
  ASSERT_TRUE(loop.ok());
  std::vector<std::string> order;
  (*loop)->add_timer_ms(30, [&] { order.push_back("30"); });
  (*loop)->add_timer_ms(10, [&] { order.push_back("10"); });
  (*loop)->add_timer_ms(20, [&] { order.push_back("20"); });
  (*loop)->add_timer_ms(40, [&] {
    order.push_back("40");
    (*loop)->stop();
  });
  bool watchdog = false;
  EventLoop::TimerId w = add_watchdog(**loop, &watchdog);
  ASSERT_TRUE((*loop)->run().ok());
  (*loop)->cancel_timer(w);
  EXPECT_FALSE(watchdog);
  EXPECT_EQ(order, (std::vector<std::string>{"10", "20", "30", "40"}));
}

TEST(EventLoop, RunOnceWaitsNoLongerThanTheNextTimerAndCountsIt) {
  auto loop = EventLoop::create();
  ASSERT_TRUE(loop.ok());
  int ran = 0;
  (*loop)->add_timer_ms(1, [&] { ++ran; });
  const auto start = std::chrono::steady_clock::now();
  EXPECT_EQ(*(*loop)->run_once(10000), 1);
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(5));
  EXPECT_EQ(ran, 1);
  EXPECT_EQ(*(*loop)->run_once(0), 0);
}

TEST(EventLoop, CancelledPendingTimerNeverRuns) {
  auto loop = EventLoop::create();
  ASSERT_TRUE(loop.ok());
  bool cancelled_ran = false, cancelled_in_callback_ran = false;
  EventLoop::TimerId a = (*loop)->add_timer_ms(1, [&] { cancelled_ran = true; });
  EventLoop::TimerId c = (*loop)->add_timer_ms(5, [&] { cancelled_in_callback_ran = true; });
  EXPECT_NE(a, 0u);
  EXPECT_NE(a, c);
  (*loop)->cancel_timer(a);
  (*loop)->cancel_timer(a);  // twice, and 0: no-ops
  (*loop)->cancel_timer(0);
  EventLoop::TimerId self = 0;
  self = (*loop)->add_timer_ms(2, [&] {
    (*loop)->cancel_timer(self);  // a running timer is already gone
    (*loop)->cancel_timer(c);
  });
  (*loop)->add_timer_ms(10, [&] { (*loop)->stop(); });
  bool watchdog = false;
  EventLoop::TimerId w = add_watchdog(**loop, &watchdog);
  ASSERT_TRUE((*loop)->run().ok());
  (*loop)->cancel_timer(w);
  EXPECT_FALSE(watchdog);
  EXPECT_FALSE(cancelled_ran);
  EXPECT_FALSE(cancelled_in_callback_ran);
}

TEST(EventLoop, CallbacksAddAndRemoveFdsAndTimers) {
  auto loop = EventLoop::create();
  ASSERT_TRUE(loop.ok());
  UniqueFd efd = make_eventfd();
  std::vector<std::string> steps;
  // timer -> registers and signals an fd -> the fd callback removes itself and sets a timer
  // -> that timer stops the loop.
  (*loop)->add_timer_ms(0, [&] {
    steps.push_back("timer 1");
    ASSERT_TRUE((*loop)->add(efd.get(), EPOLLIN, [&](uint32_t) {
      steps.push_back("fd");
      drain(efd.get());
      EXPECT_TRUE((*loop)->remove(efd.get()).ok());
      (*loop)->add_timer_ms(1, [&] {
        steps.push_back("timer 2");
        (*loop)->stop();
      });
    }).ok());
    bump(efd.get());
  });
  bool watchdog = false;
  EventLoop::TimerId w = add_watchdog(**loop, &watchdog);
  ASSERT_TRUE((*loop)->run().ok());
  (*loop)->cancel_timer(w);
  EXPECT_FALSE(watchdog);
  EXPECT_EQ(steps, (std::vector<std::string>{"timer 1", "fd", "timer 2"}));
  EXPECT_FALSE((*loop)->contains(efd.get()));
}

TEST(EventLoop, StopInCallbackLeavesTheRestForTheNextRun) {
  auto loop = EventLoop::create();
  ASSERT_TRUE(loop.ok());
  UniqueFd e1 = make_eventfd(), e2 = make_eventfd();
  std::vector<std::string> steps;
  auto on_fd = [&](int fd) {
    steps.push_back("fd");
    drain(fd);
    (*loop)->stop();
  };
  ASSERT_TRUE((*loop)->add(e1.get(), EPOLLIN, [&](uint32_t) { on_fd(e1.get()); }).ok());
  ASSERT_TRUE((*loop)->add(e2.get(), EPOLLIN, [&](uint32_t) { on_fd(e2.get()); }).ok());
  (*loop)->add_timer_ms(0, [&] {
    steps.push_back("timer");
    (*loop)->stop();
  });
  bump(e1.get());
  bump(e2.get());
  // Each run() ends after the callback that stopped it, and the loop runs again afterwards.
  for (size_t i = 1; i <= 3; ++i) {
    ASSERT_TRUE((*loop)->run().ok());
    EXPECT_TRUE((*loop)->stopped());
    EXPECT_EQ(steps.size(), i);
  }
  EXPECT_EQ(steps, (std::vector<std::string>{"fd", "fd", "timer"}));
}

TEST(EventLoop, StopBeforeRunReturnsAtOnce) {
  auto loop = EventLoop::create();
  ASSERT_TRUE(loop.ok());
  EXPECT_FALSE((*loop)->stopped());
  // Another thread may stop the loop before its thread reaches run(): the stop is not lost.
  std::thread([&] { (*loop)->stop(); }).join();
  bool timer_ran = false;
  (*loop)->add_timer_ms(0, [&] { timer_ran = true; });
  ASSERT_TRUE((*loop)->run().ok());
  EXPECT_TRUE((*loop)->stopped());
  EXPECT_FALSE(timer_ran);
}

TEST(EventLoop, TimerFiresWhileAnotherThreadPosts) {
  auto loop_r = EventLoop::create();
  ASSERT_TRUE(loop_r.ok());
  EventLoop& loop = **loop_r;
  constexpr int kTicks = 20;
  const std::thread::id test_thread = std::this_thread::get_id();
  // Loop-thread state: only touched by timer callbacks and posted functions.
  int posted_ran = 0, ticks = 0;
  bool on_test_thread = false, watchdog = false;
  std::atomic<bool> ticks_done{false};
  // A timer re-armed kTicks times, while the poster keeps posting until the last tick: every
  // tick fires amid posts, and every post (including the final stop) still runs in order.
  std::function<void()> tick = [&] {
    on_test_thread |= std::this_thread::get_id() == test_thread;
    if (++ticks < kTicks) {
      loop.add_timer_ms(1, tick);
    } else {
      ticks_done = true;
    }
  };
  loop.add_timer_ms(1, tick);
  EventLoop::TimerId w = add_watchdog(loop, &watchdog);
  std::thread runner([&] { ASSERT_TRUE(loop.run().ok()); });
  int posts_made = 0;  // poster thread until joined
  std::thread poster([&] {
    const auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(10);  // with the watchdog
    while (!ticks_done && std::chrono::steady_clock::now() < give_up) {
      loop.post([&] {
        ++posted_ran;
        on_test_thread |= std::this_thread::get_id() == test_thread;
      });
      ++posts_made;
    }
    loop.post([&] { loop.stop(); });
  });
  poster.join();
  runner.join();
  loop.cancel_timer(w);
  EXPECT_FALSE(watchdog);
  EXPECT_EQ(ticks, kTicks);
  EXPECT_GT(posts_made, 0);
  EXPECT_EQ(posted_ran, posts_made);
  EXPECT_FALSE(on_test_thread);
}

TEST(EventLoop, StopFromAnotherThreadWhileTimerPending) {
  auto loop_r = EventLoop::create();
  ASSERT_TRUE(loop_r.ok());
  EventLoop& loop = **loop_r;
  bool timer_ran = false;
  loop.add_timer_ms(60000, [&] { timer_ran = true; });
  std::promise<void> running;
  loop.post([&] { running.set_value(); });
  const auto start = std::chrono::steady_clock::now();
  std::thread runner([&] { ASSERT_TRUE(loop.run().ok()); });
  running.get_future().wait();  // the loop is inside run(), waiting for the timer
  loop.stop();
  runner.join();
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(30));
  EXPECT_FALSE(timer_ran);
  EXPECT_TRUE(loop.stopped());
}

}  // namespace
}  // namespace kiln
