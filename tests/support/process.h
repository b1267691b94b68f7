// Helpers tests share for child processes and files: spawn with output to a file, wait with a
// deadline (pidfd, no polling sleeps), run to completion, read a whole file, a monotonic clock.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <string>
#include <vector>

#include "common/result.h"

namespace kiln::testing {

// Starts argv[0] (a path, or a name looked up in PATH) with stdout and stderr into `out_path` (truncated;
// "" keeps the test's own) and the test's environment. Returns the pid, or -1.
pid_t spawn(const std::vector<std::string>& argv, const std::string& out_path = "");

// Waits for `pid` at most `timeout_ms`: its exit code, 128 + signal, or -1000 after a timeout
// (the child is then killed and reaped).
constexpr int kTimedOut = -1000;
int wait_exit(pid_t pid, int timeout_ms);

// Runs `fn` in a forked child with a network namespace of its own (devices it makes vanish with
// it): fn's result as the exit code, kUnshareFailed when the namespace could not be made (not
// root), else as wait_exit.
constexpr int kUnshareFailed = 100;
int in_new_netns(int (*fn)(), int timeout_ms = 60000);

// spawn + wait_exit: the exit code, -1 when it could not start, kTimedOut after `timeout_ms`.
int run(const std::vector<std::string>& argv, const std::string& out_path = "", int timeout_ms = 120000);

// The whole file ("" when it cannot be read).
std::string slurp(const std::string& path);

// CLOCK_MONOTONIC in milliseconds.
std::uint64_t monotonic_ms();

// Everything `fd` (a blocking socket whose request was sent) returns until its end of stream,
// within `timeout_ms` from now; the error names `what` ("<what> timed out", "recv <what>: ...").
Result<std::string> read_until_eof(int fd, int timeout_ms, const std::string& what);

}  // namespace kiln::testing
