// Supervisor implementation: plain fork/execve (the agent is single-threaded, so fork is
// safe), pipes read non-blocking from the event loop, waitpid(-1) for reaping.
#include "guest-agent/agent/supervisor.h"

#include <fcntl.h>
#include <grp.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cstring>
#include <vector>

namespace kiln::agent {

struct Supervisor::Pipe {
  protocol::LogStream stream;
  UniqueFd fd;
  LineSplitter splitter;
  bool open = false;
  Pipe(protocol::LogStream s, LineSplitter::Sink sink) : stream(s), splitter(kMaxLogLine, std::move(sink)) {}
};

std::uint64_t Supervisor::realtime_ns() {
  timespec ts{};
  clock_gettime(CLOCK_REALTIME, &ts);
  return static_cast<std::uint64_t>(ts.tv_sec) * 1000000000ull + static_cast<std::uint64_t>(ts.tv_nsec);
}

Supervisor::Supervisor(EventLoop& loop, Callbacks cb, std::uint64_t drain_ms)
    : loop_(loop), cb_(std::move(cb)), drain_ms_(drain_ms) {}

Supervisor::~Supervisor() {
  if (out_) close_pipe(*out_);
  if (err_) close_pipe(*err_);
  if (drain_timer_) loop_.cancel_timer(drain_timer_);
}

namespace {

// Child side of start(): only async-signal-safe calls until execve.
[[noreturn]] void exec_child(const ExecPlan& plan, int out_w, int err_w, char* const* argv,
                             char* const* envp) {
  sigset_t none;
  sigemptyset(&none);
  sigprocmask(SIG_SETMASK, &none, nullptr);
  for (int s = 1; s < NSIG; ++s) signal(s, SIG_DFL);
  setsid();
  int null_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
  if (null_fd >= 0) dup2(null_fd, 0);
  dup2(out_w, 1);
  dup2(err_w, 2);
  auto fail = [](const char* what, int code) {
    int e = errno;
    const char* msg = strerror(e);
    (void)!write(2, "kiln-init: ", 11);
    (void)!write(2, what, strlen(what));
    (void)!write(2, ": ", 2);
    (void)!write(2, msg, strlen(msg));
    (void)!write(2, "\n", 1);
    _exit(code);
  };
  const Credentials& c = plan.creds;
  if (setgroups(c.groups.size(), c.groups.data()) != 0) fail("setgroups", 126);
  if (setgid(c.gid) != 0) fail("setgid", 126);
  if (setuid(c.uid) != 0) fail("setuid", 126);
  if (chdir(plan.working_dir.c_str()) != 0) fail("chdir to working dir", 126);
  execve(plan.program.c_str(), argv, envp);
  fail(plan.program.c_str(), errno == ENOENT ? 127 : 126);
  _exit(126);
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

  pid_t pid = fork();
  if (pid < 0) return errno_error("fork");
  if (pid == 0) exec_child(plan, out_w.get(), err_w.get(), argv.data(), envp.data());
  pid_ = pid;
  main_exited_ = false;
  reported_ = false;

  auto make = [this](protocol::LogStream s, UniqueFd fd) {
    auto p = std::make_unique<Pipe>(s, [this, s](std::string_view data, bool partial) {
      if (cb_.line) cb_.line(s, realtime_ns(), data, partial);
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
  // The command called setsid(), so its pid is its process group id.
  if (::kill(-pid_, sig) != 0) ::kill(pid_, sig);
}

}  // namespace kiln::agent
