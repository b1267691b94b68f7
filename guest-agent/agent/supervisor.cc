// Supervisor implementation: fork/execve, or clone into new PID + mount namespaces with a
// namespace init in between (agent/boundary.h); pipes read non-blocking from the event loop,
// waitpid(-1) for reaping.
#include "guest-agent/agent/supervisor.h"

#include <fcntl.h>
#include <grp.h>
#include <signal.h>
#include <sched.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cstring>
#include <vector>

#include "common/clock.h"

namespace kiln::agent {

struct Supervisor::Pipe {
  protocol::LogStream stream;
  UniqueFd fd;
  LineSplitter splitter;
  bool open = false;
  Pipe(protocol::LogStream s, LineSplitter::Sink sink) : stream(s), splitter(kMaxLogLine, std::move(sink)) {}
};

Supervisor::Supervisor(EventLoop& loop, Callbacks cb, std::uint64_t drain_ms)
    : loop_(loop), cb_(std::move(cb)), drain_ms_(drain_ms) {}

Supervisor::~Supervisor() {
  if (out_) close_pipe(*out_);
  if (err_) close_pipe(*err_);
  if (drain_timer_) loop_.cancel_timer(drain_timer_);
}

namespace {

// "kiln-init: <what>: <strerror>\n" on fd 2, then _exit(code). Async-signal-safe.
[[noreturn]] void fail(const char* what, int code) {
  int e = errno;
  const char* msg = strerror(e);
  (void)!write(2, "kiln-init: ", 11);
  (void)!write(2, what, strlen(what));
  (void)!write(2, ": ", 2);
  (void)!write(2, msg, strlen(msg));
  (void)!write(2, "\n", 1);
  _exit(code);
}

void setup_stdio(int out_w, int err_w) {
  int null_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
  if (null_fd >= 0) dup2(null_fd, 0);
  dup2(out_w, 1);
  dup2(err_w, 2);
}

// Child side of start(): only async-signal-safe calls until execve.
[[noreturn]] void exec_child(const ExecPlan& plan, char* const* argv, char* const* envp) {
  sigset_t none;
  sigemptyset(&none);
  sigprocmask(SIG_SETMASK, &none, nullptr);
  for (int s = 1; s < NSIG; ++s) signal(s, SIG_DFL);
  setsid();
  const Credentials& c = plan.creds;
  if (setgroups(c.groups.size(), c.groups.data()) != 0) fail("setgroups", 126);
  if (setgid(c.gid) != 0) fail("setgid", 126);
  if (setuid(c.uid) != 0) fail("setuid", 126);
  if (chdir(plan.working_dir.c_str()) != 0) fail("chdir to working dir", 126);
  execve(plan.program.c_str(), argv, envp);
  fail(plan.program.c_str(), errno == ENOENT ? 127 : 126);
  _exit(126);
}

// The cloned child, PID 1 of the new namespaces: the boundary's mounts, then the command as
// its child, then the namespace init. Failures: a stderr line and exit code 126.
[[noreturn]] void boundary_child(const ExecPlan& plan, const BoundaryPlan& boundary, int status_w,
                                 char* const* argv, char* const* envp) {
  sigset_t all;
  sigfillset(&all);
  sigprocmask(SIG_SETMASK, &all, nullptr);
  // Outside a VM (tests) the agent is not PID 1: do not outlive it.
  prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
  if (const char* step = enter_boundary(boundary)) fail(step, 126);
  pid_t pid = fork();
  if (pid < 0) fail("fork", 126);
  if (pid == 0) exec_child(plan, argv, envp);
  for (int fd = 0; fd < 3; ++fd) close(fd);  // only the command holds the log pipes
  run_namespace_init(boundary, pid, status_w);
}

}  // namespace

Result<pid_t> Supervisor::start(const ExecPlan& plan) {
  if (pid_ > 0) return make_error("supervisor: already started");
  int out[2], err[2];
  if (pipe2(out, O_CLOEXEC) != 0) return errno_error("pipe2");
  UniqueFd out_r(out[0]), out_w(out[1]);
  if (pipe2(err, O_CLOEXEC) != 0) return errno_error("pipe2");
  UniqueFd err_r(err[0]), err_w(err[1]);

  // Build argv/envp before fork: no allocation in the child.
  std::vector<char*> argv, envp;
  for (const auto& a : plan.argv) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  for (const auto& e : plan.env) envp.push_back(const_cast<char*>(e.c_str()));
  envp.push_back(nullptr);

  const bool isolate = plan.isolation == Isolation::kOn || (plan.isolation == Isolation::kAuto && ::getpid() == 1);
  BoundaryPlan boundary;
  UniqueFd status_r, status_w;
  if (isolate) {
    KILN_ASSIGN_OR_RETURN(boundary, prepare_boundary());
    // Non-blocking both ways: the pipe is reachable from inside the namespace (/proc/1/fd), and
    // nothing written there may stall fn-init or the agent.
    int st[2];
    if (pipe2(st, O_CLOEXEC | O_NONBLOCK) != 0) return errno_error("pipe2");
    status_r = UniqueFd(st[0]);
    status_w = UniqueFd(st[1]);
  }

  pid_t pid;
  if (isolate) {
    // Fork-like clone (no new stack): the child runs on a copy of this one.
    pid = static_cast<pid_t>(::syscall(SYS_clone, CLONE_NEWPID | CLONE_NEWNS | SIGCHLD, nullptr, nullptr, nullptr, nullptr));
    if (pid < 0) return errno_error("clone into new PID and mount namespaces");
  } else {
    pid = fork();
    if (pid < 0) return errno_error("fork");
  }
  if (pid == 0) {
    setup_stdio(out_w.get(), err_w.get());
    if (isolate) boundary_child(plan, boundary, status_w.get(), argv.data(), envp.data());
    exec_child(plan, argv.data(), envp.data());
  }
  pid_ = pid;
  isolated_ = isolate;
  status_r_ = std::move(status_r);
  main_exited_ = false;
  reported_ = false;

  auto make = [this](protocol::LogStream s, UniqueFd fd) {
    auto p = std::make_unique<Pipe>(s, [this, s](std::string_view data, bool partial) {
      if (cb_.line) cb_.line(s, kiln::realtime_ns(), data, partial);
    });
    fcntl(fd.get(), F_SETFL, fcntl(fd.get(), F_GETFL) | O_NONBLOCK);
    p->fd = std::move(fd);
    p->open = true;
    Pipe* raw = p.get();
    auto st = loop_.add(raw->fd.get(), EPOLLIN, [this, raw](std::uint32_t) { on_pipe(*raw); });
    if (!st.ok()) raw->open = false;
    return p;
  };
  out_ = make(protocol::LogStream::kStdout, std::move(out_r));
  err_ = make(protocol::LogStream::kStderr, std::move(err_r));
  return pid;
}

void Supervisor::on_pipe(Pipe& p) {
  char buf[16384];
  // Bounded per wakeup so one chatty stream cannot starve the loop.
  for (int i = 0; i < 16; ++i) {
    ssize_t n = ::read(p.fd.get(), buf, sizeof(buf));
    if (n > 0) {
      p.splitter.feed(std::string_view(buf, static_cast<std::size_t>(n)));
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return;
    close_pipe(p);  // EOF or error
    maybe_report();
    return;
  }
}

void Supervisor::close_pipe(Pipe& p) {
  if (!p.open) return;
  p.open = false;
  p.splitter.finish();
  loop_.remove_if_present(p.fd.get());
  p.fd.reset();
}

void Supervisor::reap() {
  while (true) {
    int status = 0;
    pid_t r = waitpid(-1, &status, WNOHANG);
    if (r <= 0) {
      if (r < 0 && errno == EINTR) continue;
      break;
    }
    if (r == pid_ && !main_exited_) {
      main_exited_ = true;
      exit_.pid = r;
      // Under the boundary, r is the namespace init: the command's own status comes through
      // the status pipe (absent when the init itself was killed or failed to set up).
      int command_status = 0;
      if (isolated_ && ::read(status_r_.get(), &command_status, sizeof command_status) == sizeof command_status) {
        status = command_status;
      }
      if (WIFSIGNALED(status)) {
        exit_.signaled = true;
        exit_.code = WTERMSIG(status);
      } else {
        exit_.signaled = false;
        exit_.code = WEXITSTATUS(status);
      }
      drain_timer_ = loop_.add_timer_ms(drain_ms_, [this] {
        drain_timer_ = 0;
        for (Pipe* p : {out_.get(), err_.get()}) {
          if (p && p->open) {
            on_pipe(*p);
            close_pipe(*p);
          }
        }
        maybe_report();
      });
      maybe_report();
    }
  }
}

void Supervisor::maybe_report() {
  if (!main_exited_ || reported_) return;
  if ((out_ && out_->open) || (err_ && err_->open)) return;
  reported_ = true;
  if (drain_timer_) loop_.cancel_timer(drain_timer_);
  drain_timer_ = 0;
  if (cb_.exited) cb_.exited(exit_);
}

void Supervisor::drain() {
  for (Pipe* p : {out_.get(), err_.get()}) {
    if (p && p->open) on_pipe(*p);
  }
}

void Supervisor::signal_group(int sig) {
  if (pid_ <= 0 || main_exited_) return;
  // Under the boundary the namespace init forwards the signal to the command's group, and
  // SIGKILL to it ends the whole namespace.
  if (isolated_) {
    if (sig == SIGKILL) {
      ::kill(pid_, SIGKILL);
    } else {
      sigval value{};
      value.sival_int = sig;
      ::sigqueue(pid_, boundary_forward_signal(), value);
    }
    return;
  }
  // The command called setsid(), so its pid is its process group id.
  if (::kill(-pid_, sig) != 0) ::kill(pid_, sig);
}

}  // namespace kiln::agent
