// KilndTest: GoogleTest fixture over KilndProcess for e2e tests: a fresh state dir per test,
// skipped (with kiln-vmm's self-test sentence) where this machine's KVM cannot run Linux,
// kilnd killed and the state dir removed afterwards (after a failure, first printing what it
// holds for a diagnosis: every function's log tail and every instance's console tail).
#pragma once

#include <gtest/gtest.h>

#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "tests/e2e/lib/kilnd_harness.h"

namespace kiln::e2e {

class KilndTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto dir = make_temp_dir("kilnd-e2e");
    ASSERT_TRUE(dir.ok()) << dir.error().message;
    state_ = *dir;
    kilnd_ = std::make_unique<KilndProcess>(state_);
    // The VMM's self-test decides: a host whose KVM cannot run Linux skips with its sentence.
    std::string why = kvm_unusable_reason(kilnd_->paths(), state_);
    if (!why.empty()) GTEST_SKIP() << why;
    ASSERT_TRUE(std::filesystem::exists(kilnd_->paths().kernel))
        << "no guest kernel at " << kilnd_->paths().kernel << " (ninja guest-kernel)";
    ASSERT_TRUE(std::filesystem::exists(kilnd_->paths().initramfs)) << "no initramfs (ninja kiln-initramfs)";
  }
  void TearDown() override {
    kilnd_.reset();  // SIGKILL if still running
    if (HasFailure() && !state_.empty()) print_state_tails(state_);
    std::error_code ec;
    std::filesystem::remove_all(state_, ec);
  }

  void start(std::vector<std::string> extra_args = {}) {
    auto st = kilnd_->start(std::move(extra_args));
    ASSERT_TRUE(st.ok()) << st.error().message;
  }

  // The answer, or an empty result (status 0) with a test failure when the call itself failed.
  kilnd::client::HttpResult call(const std::string& method, const std::string& target, const std::string& body = "") {
    auto r = kilnd_->call(method, target, body);
    EXPECT_TRUE(r.ok()) << (r.ok() ? "" : r.error().message);
    return r.ok() ? *r : kilnd::client::HttpResult{};
  }

  std::string state_;
  std::unique_ptr<KilndProcess> kilnd_;
};

}  // namespace kiln::e2e
