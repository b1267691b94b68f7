// InstanceResources: the host resources of one instance, set up before its first VMM starts
// and released after its last one ended (a restore that falls back to a cold boot keeps them).
// Today: the run dir (sockets, vmm.log, vmm.pid). Networking adds the instance's TAP device and
// network namespace here, as further release steps. (The jail is not one: it belongs to one VMM
// process, see VmmProcess::release.)
#pragma once

#include <filesystem>
#include <functional>
#include <string>
#include <system_error>
#include <utility>
#include <vector>

#include "common/result.h"

namespace kiln::kilnd::pool {

class InstanceResources {
 public:
  explicit InstanceResources(std::string run_dir) : run_dir_(std::move(run_dir)) {}
  ~InstanceResources() { release(); }
  InstanceResources(const InstanceResources&) = delete;
  InstanceResources& operator=(const InstanceResources&) = delete;

  // Creates the run dir (kilnd's alone, 0700).
  Status set_up() {
    std::error_code ec;
    std::filesystem::create_directories(run_dir_, ec);
    if (ec) return make_error("creating " + run_dir_ + ": " + ec.message());
    std::filesystem::permissions(run_dir_, std::filesystem::perms::owner_all, ec);
    on_release([dir = run_dir_] {
      std::error_code ignored;
      std::filesystem::remove_all(dir, ignored);
    });
    return ok_status();
  }

  // Adds a release step; release() runs them newest first.
  void on_release(std::function<void()> step) { releases_.push_back(std::move(step)); }

  // Idempotent.
  void release() {
    while (!releases_.empty()) {
      auto step = std::move(releases_.back());
      releases_.pop_back();
      step();
    }
  }

  const std::string& run_dir() const { return run_dir_; }

 private:
  std::string run_dir_;
  std::vector<std::function<void()>> releases_;
};

}  // namespace kiln::kilnd::pool
