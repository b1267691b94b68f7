// Agent implementation. Order of events on port 10001: hello, (log lines...), ready or
// not-ready, (log lines...), exit. Control requests on port 10000 each get one reply frame.
#include "guest-agent/agent/agent.h"

#include <signal.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <sstream>

#include "common/clock.h"
#include "common/io.h"
#include "common/protocol/messages.h"
#include "guest-agent/agent/exec_plan.h"
#include "guest-agent/agent/lambda_env.h"
#include "guest-agent/agent/rng_reseed.h"
#include "guest-agent/agent/user.h"

namespace kiln::agent {

using protocol::Frame;
using protocol::FrameType;

namespace {

constexpr std::size_t kMaxControlConns = 16;
constexpr std::size_t kMaxControlOut = 1024 * 1024;

constexpr std::size_t kMaxUserDbBytes = 4 * 1024 * 1024;  // the image's /etc/passwd, /etc/group

std::uint64_t monotonic_us() { return kiln::monotonic_ns() / 1000; }

// "1.25 ms" since `t0_us` (monotonic_us): the identity ack's timings, finer than the event loop's ms.
std::string ms_since(std::uint64_t t0_us) {
  const std::uint64_t us = monotonic_us() - t0_us;
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%llu.%02llu ms", static_cast<unsigned long long>(us / 1000),
                static_cast<unsigned long long>((us % 1000) / 10));
  return buf;
}

std::string seconds_text(std::uint64_t ms) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%llu.%01llu", static_cast<unsigned long long>(ms / 1000),
                static_cast<unsigned long long>((ms % 1000) / 100));
  std::string s = buf;
  if (s.size() > 2 && s.substr(s.size() - 2) == ".0") s.resize(s.size() - 2);
  return s;
}

}  // namespace

struct Agent::ControlConn {
  UniqueFd fd;
  protocol::FrameDecoder decoder;
  std::string out;
  bool closing = false;  // close once `out` is written
};

const char* Agent::state_name(State s) {
  switch (s) {
    case State::kWaiting: return "waiting";
    case State::kStarting: return "starting";
    case State::kReady: return "ready";
    case State::kNotReady: return "not-ready";
    case State::kStopping: return "stopping";
    case State::kExited: return "exited";
  }
  return "unknown";
}

Agent::Agent(AgentOptions options) : opt_(std::move(options)) {}

Agent::~Agent() {
  // Members that registered with the loop go first.
  controls_.clear();
  bridge_.reset();
  proxy_.reset();
  events_.reset();
  supervisor_.reset();
}

void Agent::say(const std::string& msg) {
  if (opt_.console) opt_.console(msg);
}

protocol::HelloEvent Agent::hello() const {
  protocol::HelloEvent h;
  h.version = opt_.version;
  h.boot_id = opt_.boot_id;
  h.instance_id = instance_id_;
  h.state = state_name(state_);
  return h;
}

Status Agent::run() {
  boot_ms_ = EventLoop::now_ms();
  KILN_TRY(loop_.init());

  sigset_t set;
  sigemptyset(&set);
  for (int s : {SIGCHLD, SIGTERM, SIGINT, SIGHUP, SIGQUIT, SIGPIPE}) sigaddset(&set, s);
  if (sigprocmask(SIG_BLOCK, &set, nullptr) != 0) return errno_error("sigprocmask");
  sigdelset(&set, SIGPIPE);  // blocked (so writes return EPIPE) but not handled
  signal_fd_.reset(signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC));
  if (!signal_fd_) return errno_error("signalfd");
  KILN_TRY(loop_.add(signal_fd_.get(), EPOLLIN, [this](std::uint32_t) { on_signal(); }));

  supervisor_ = std::make_unique<Supervisor>(
      loop_,
      Supervisor::Callbacks{
          [this](protocol::LogStream s, std::uint64_t ts, std::string_view d, bool partial) {
            events_->log(s, ts, d, partial, requests_.current());
          },
          [this](const ExitInfo& info) { on_exited(info); }},
      opt_.drain_ms);

  events_ = std::make_unique<EventStream>(loop_, opt_.events, opt_.limits, [this] { return hello(); });

  KILN_ASSIGN_OR_RETURN(control_listener_, listen_on(opt_.control));
  KILN_TRY(loop_.add(control_listener_.get(), EPOLLIN, [this](std::uint32_t) { on_control_accept(); }));
  KILN_ASSIGN_OR_RETURN(UniqueFd proxy_listener, listen_on(opt_.proxy));
  proxy_ = std::make_unique<Proxy>(loop_, std::move(proxy_listener), kProxyPort);
  proxy_->set_reporter([this](const std::string& what) {
    if (events_) events_->log(protocol::LogStream::kStderr, kiln::realtime_ns(), "kiln-init: proxy: " + what, false);
  });
  // Output the command wrote before a request reached it belongs to the requests before: read
  // the pipes before the request's head goes on, then tag what follows with the new request.
  proxy_->set_observer(Proxy::Observer{
      [this](std::uint64_t session, std::string_view head) {
        supervisor_->drain();
        requests_.started(session, RequestTracker::request_id_in_head(head));
      },
      [this](std::uint64_t session) { requests_.answered(session); },
      [this](std::uint64_t session) { requests_.closed(session); }});
  KILN_TRY(proxy_->start());

  events_->start();
  if (opt_.spec) {
    protocol::LaunchSpec spec = *opt_.spec;
    loop_.add_timer_ms(0, [this, spec] {
      if (state_ == State::kWaiting) launch(spec);
    });
  }
  return loop_.run();
}

void Agent::on_signal() {
  signalfd_siginfo si;
  while (::read(signal_fd_.get(), &si, sizeof(si)) == static_cast<ssize_t>(sizeof(si))) {
    int sig = static_cast<int>(si.ssi_signo);
    if (sig == SIGCHLD) {
      supervisor_->reap();
      // As PID 1, orphans re-parented to us are reaped by the same waitpid(-1) loop.
      continue;
    }
    if (sig == SIGTERM || sig == SIGINT) {
      say(std::string("received ") + (sig == SIGTERM ? "SIGTERM" : "SIGINT") + ", stopping");
      shutdown(spec_.stop_grace_ms, sig);
    }
    // SIGHUP/SIGQUIT: ignored (a PID 1 must not die from a stray signal).
  }
}

void Agent::on_control_accept() {
  while (true) {
    UniqueFd conn(::accept4(control_listener_.get(), nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC));
    if (!conn) {
      if (errno == EINTR) continue;
      return;
    }
    if (controls_.size() >= kMaxControlConns) continue;
    std::uint64_t id = next_control_++;
    auto c = std::make_unique<ControlConn>();
    c->fd = std::move(conn);
    int fd = c->fd.get();
    controls_[id] = std::move(c);
    if (!loop_.add(fd, EPOLLIN | EPOLLRDHUP, [this, id](std::uint32_t ev) { on_control(id, ev); }).ok()) {
      controls_.erase(id);
    }
  }
}

void Agent::on_control(std::uint64_t id, std::uint32_t events) {
  auto it = controls_.find(id);
  if (it == controls_.end()) return;
  ControlConn& c = *it->second;
  if (!c.closing && (events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR))) {
    char buf[16384];
    while (true) {
      ssize_t n = ::recv(c.fd.get(), buf, sizeof(buf), MSG_DONTWAIT);
      if (n > 0) {
        auto st = c.decoder.feed(std::string_view(buf, static_cast<std::size_t>(n)));
        Frame f;
        while (controls_.count(id) && c.decoder.next(&f)) handle_request(c, f);
        if (!controls_.count(id)) return;
        if (!st.ok() || c.decoder.failed()) {
          // A corrupt stream cannot be resynchronised: say why, then hang up.
          auto ack = protocol::encode(protocol::Ack{false, c.decoder.failure()});
          if (ack.ok()) c.out += *ack;
          c.closing = true;
          break;
        }
        continue;
      }
      if (n < 0 && errno == EINTR) continue;
      if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) break;
      c.closing = true;  // EOF or error
      break;
    }
  }
  while (!c.out.empty()) {
    ssize_t n = ::send(c.fd.get(), c.out.data(), c.out.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n > 0) {
      c.out.erase(0, static_cast<std::size_t>(n));
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) break;
    close_control(id);
    return;
  }
  if (c.closing && c.out.empty()) {
    close_control(id);
    return;
  }
  (void)loop_.modify(c.fd.get(), (c.closing ? 0u : (EPOLLIN | EPOLLRDHUP)) | (c.out.empty() ? 0u : EPOLLOUT));
}

void Agent::close_control(std::uint64_t id) {
  auto it = controls_.find(id);
  if (it == controls_.end()) return;
  loop_.remove_if_present(it->second->fd.get());
  controls_.erase(it);
}

void Agent::handle_request(ControlConn& c, const Frame& f) {
  auto reply = [&c](const Result<std::string>& frame) {
    if (!frame.ok()) return;
    if (c.out.size() + frame->size() > kMaxControlOut) {
      c.closing = true;  // the host is not reading its replies
      return;
    }
    c.out += *frame;
  };
  auto ack = [&reply](bool ok, std::string message) { reply(protocol::encode(protocol::Ack{ok, std::move(message)})); };
  switch (f.type) {
    case FrameType::kLaunchSpec: {
      if (state_ != State::kWaiting) {
        ack(false, "already launched");
        return;
      }
      auto spec = protocol::decode_launch_spec(f.payload);
      if (!spec.ok()) {
        ack(false, spec.error().message);
        return;
      }
      ack(true, "launching");
      launch(*spec);
      return;
    }
    case FrameType::kStatusRequest: {
      protocol::StatusReply s;
      s.state = state_name(state_);
      s.pid = supervisor_->pid() > 0 ? static_cast<std::uint64_t>(supervisor_->pid()) : 0;
      s.ready = ready_;
      s.exited = exited_;
      s.signaled = exit_.signaled;
      s.exit_code = exit_.code;
      s.dropped = events_->dropped_total();
      s.uptime_ms = EventLoop::now_ms() - boot_ms_;
      s.next_seq = events_->next_seq();
      s.instance_id = instance_id_;
      reply(protocol::encode(s));
      return;
    }
    case FrameType::kIdentity: {
      auto id = protocol::decode_identity(f.payload);
      if (!id.ok()) {
        ack(false, id.error().message);
        return;
      }
      // Its own time is part of the ack: the restore waits for it (kilnd logs the ack).
      const std::uint64_t t0 = monotonic_us();
      std::string problems;
      // Hostname and clock are machine-wide: only the guest's PID 1 may change them (never a
      // development run of the agent on a host).
      if (!id->hostname.empty() && opt_.pid1 &&
          sethostname(id->hostname.data(), id->hostname.size()) != 0) {
        problems += "sethostname: " + errno_error("").message + "; ";
      }
      if (id->wall_clock_ns != 0 && opt_.pid1) {
        timespec ts{static_cast<time_t>(id->wall_clock_ns / 1000000000ull),
                    static_cast<long>(id->wall_clock_ns % 1000000000ull)};
        if (clock_settime(CLOCK_REALTIME, &ts) != 0) problems += "clock_settime failed; ";
      }
      if (!id->entropy.empty() && opt_.pid1) {
        if (Status st = reseed_kernel_rng(id->entropy); !st.ok()) problems += st.error().message + "; ";
      }
      const std::string own = ms_since(t0);
      std::string note;
      if (opt_.after_identity) {
        const std::uint64_t hook_t0 = monotonic_us();
        auto done = opt_.after_identity();
        if (!done.ok()) problems += done.error().message + "; ";
        if (done.ok() && !done->empty()) note = "; " + *done + " (" + ms_since(hook_t0) + ")";
      }
      if (!id->instance_id.empty()) instance_id_ = id->instance_id;
      ack(problems.empty(), problems.empty() ? "identity applied in " + ms_since(t0) + " (clock, name, RNG " + own + ")" + note : problems);
      // After a restore the vsock transport was reset: start a fresh event connection.
      events_->reconnect_now();
      return;
    }
    case FrameType::kShutdown: {
      auto req = protocol::decode_shutdown(f.payload);
      if (!req.ok()) {
        ack(false, req.error().message);
        return;
      }
      ack(true, "shutting down");
      shutdown(req->has_grace ? req->grace_ms : spec_.stop_grace_ms, SIGTERM);
      return;
    }
    default:
      ack(false, "unknown or unexpected frame type " + std::to_string(static_cast<int>(f.type)));
      return;
  }
}

void Agent::launch_failed(const std::string& message, int code) {
  say("launch failed: " + message);
  events_->log(protocol::LogStream::kStderr, kiln::realtime_ns(), "kiln-init: " + message, false);
  exited_ = true;
  exit_ = ExitInfo{0, false, code};
  state_ = State::kExited;
  events_->exit(0, false, code);
  finish();
}

void Agent::launch(const protocol::LaunchSpec& spec) {
  spec_ = spec;
  if (instance_id_.empty()) instance_id_ = spec.instance_id;
  state_ = State::kStarting;
  if (spec.wall_clock_ns != 0 && opt_.pid1) {
    // The guest may boot without a usable wall clock (no RTC): take the host's.
    timespec ts{static_cast<time_t>(spec.wall_clock_ns / 1000000000ull),
                static_cast<long>(spec.wall_clock_ns % 1000000000ull)};
    if (clock_settime(CLOCK_REALTIME, &ts) != 0) say("clock_settime: " + errno_error("").message);
  }
  if (opt_.prepare_root) {
    auto st = opt_.prepare_root(spec);
    if (!st.ok()) {
      launch_failed("preparing the root filesystem: " + st.error().message, 125);
      return;
    }
  }
  // An image without (or with an unreadable) /etc/passwd or /etc/group reads as empty files:
  // numeric users still resolve, names are refused by resolve_user.
  auto passwd = io::read_file(opt_.passwd_path, kMaxUserDbBytes);
  auto group = io::read_file(opt_.group_path, kMaxUserDbBytes);
  auto creds = resolve_user(spec.user, passwd.ok() ? *passwd : std::string(), group.ok() ? *group : std::string());
  if (!creds.ok()) {
    launch_failed(creds.error().message, 126);
    return;
  }
  protocol::LaunchSpec run_spec = spec;
  if (spec.runtime_api == protocol::RuntimeApi::kLambda) {
    if (auto st = start_lambda(&run_spec); !st.ok()) {
      launch_failed("serving the Lambda Runtime API: " + st.error().message, 125);
      return;
    }
  }
  auto plan = build_exec_plan(run_spec, *creds, is_executable_file);
  if (!plan.ok()) {
    launch_failed(plan.error().message, 127);
    return;
  }
  proxy_->set_target_port(spec.port);
  auto pid = supervisor_->start(*plan);
  if (!pid.ok()) {
    launch_failed("starting the command: " + pid.error().message, 126);
    return;
  }
  say("started " + plan->program + " as pid " + std::to_string(*pid));
  started_ms_ = EventLoop::now_ms();
  if (bridge_) {
    // Ready is the runtime's first `next` (lambda_ready); until then only the timeout runs.
    probe_timer_ = loop_.add_timer_ms(spec.ready_timeout_ms, [this] {
      probe_timer_ = 0;
      if (ready_ || not_ready_sent_ || finishing_) return;
      not_ready_sent_ = true;
      if (state_ == State::kStarting) state_ = State::kNotReady;
      std::string msg = "not ready after " + seconds_text(spec_.ready_timeout_ms) +
                        " s: the runtime did not call /2018-06-01/runtime/invocation/next";
      say(msg);
      events_->not_ready(api_port_, EventLoop::now_ms() - started_ms_, msg);
    });
    return;
  }
  probing_ = true;
  probe();
}

Status Agent::start_lambda(protocol::LaunchSpec* spec) {
  KILN_ASSIGN_OR_RETURN(UniqueFd api, listen_loopback_tcp(opt_.runtime_api_port, &api_port_));
  spec->env = lambda_environment(*spec, "127.0.0.1:" + std::to_string(api_port_));
  LambdaBridge::Callbacks cb;
  cb.ready = [this] { lambda_ready(); };
  cb.init_error = [this](const std::string& e) { lambda_init_error(e); };
  // As for the proxy: output written before the runtime could see an invocation is not its.
  cb.started = [this](std::uint64_t conn, const std::string& id) {
    supervisor_->drain();
    requests_.started(conn, id);
  };
  cb.answered = [this](std::uint64_t conn) { requests_.answered(conn); };
  cb.closed = [this](std::uint64_t conn) { requests_.closed(conn); };
  cb.report = [this](const std::string& what) {
    events_->log(protocol::LogStream::kStderr, kiln::realtime_ns(), "kiln-init: " + what, false);
  };
  bridge_ = std::make_unique<LambdaBridge>(loop_, proxy_->release_listener(), std::move(api), *spec, std::move(cb));
  return bridge_->start();
}

void Agent::lambda_ready() {
  if (ready_ || finishing_) return;
  if (probe_timer_) loop_.cancel_timer(probe_timer_);
  probe_timer_ = 0;
  ready_ = true;
  if (state_ == State::kStarting || state_ == State::kNotReady) state_ = State::kReady;
  events_->ready(api_port_, EventLoop::now_ms() - started_ms_);
}

void Agent::lambda_init_error(const std::string& error_json) {
  // Lambda ends an environment whose init failed: say so in the log and to the host.
  std::string msg = "runtime init error: " + error_json.substr(0, 1024);
  say(msg);
  events_->log(protocol::LogStream::kStderr, kiln::realtime_ns(), "kiln-init: " + msg, false);
  if (!ready_ && !not_ready_sent_) {
    not_ready_sent_ = true;
    if (state_ == State::kStarting) state_ = State::kNotReady;
    events_->not_ready(api_port_, EventLoop::now_ms() - started_ms_, msg);
  }
  // Runtimes exit by themselves after reporting (and may still be logging why): stop it only if
  // it has not within the grace period.
  loop_.add_timer_ms(spec_.stop_grace_ms, [this] { shutdown(spec_.stop_grace_ms, SIGTERM); });
}

void Agent::probe() {
  probe_timer_ = 0;
  if (!probing_) return;
  if (probe_fd_) {
    loop_.remove_if_present(probe_fd_.get());
    probe_fd_.reset();
  }
  std::uint64_t waited = EventLoop::now_ms() - started_ms_;
  auto succeeded = [this](std::uint64_t elapsed) {
    probing_ = false;
    ready_ = true;
    if (state_ == State::kStarting || state_ == State::kNotReady) state_ = State::kReady;
    events_->ready(spec_.port, elapsed);
  };
  auto retry_or_give_up = [this] {
    std::uint64_t now_waited = EventLoop::now_ms() - started_ms_;
    if (now_waited >= spec_.ready_timeout_ms && !not_ready_sent_) {
      not_ready_sent_ = true;
      if (state_ == State::kStarting) state_ = State::kNotReady;
      std::string msg = "not ready after " + seconds_text(spec_.ready_timeout_ms) +
                        " s: nothing accepted connections on 127.0.0.1:" + std::to_string(spec_.port);
      say(msg);
      events_->not_ready(spec_.port, now_waited, msg);
    }
    // After the not-ready event keep probing, slower: a late ready still reaches the host,
    // which decides whether to wait or to shut the instance down.
    std::uint64_t interval = not_ready_sent_ ? std::max<std::uint64_t>(opt_.probe_interval_ms, 250)
                                             : opt_.probe_interval_ms;
    probe_timer_ = loop_.add_timer_ms(interval, [this] { probe(); });
  };
  bool in_progress = false;
  auto fd = connect_loopback_tcp(spec_.port, &in_progress);
  if (fd.ok() && !in_progress) {
    succeeded(waited);
    return;
  }
  if (!fd.ok()) {
    retry_or_give_up();
    return;
  }
  probe_fd_ = std::move(fd.value());
  auto st = loop_.add(probe_fd_.get(), EPOLLOUT, [this, succeeded, retry_or_give_up](std::uint32_t) {
    bool ok = connect_result(probe_fd_.get()).ok();
    loop_.remove_if_present(probe_fd_.get());
    probe_fd_.reset();
    if (!probing_) return;
    if (ok) {
      succeeded(EventLoop::now_ms() - started_ms_);
    } else {
      retry_or_give_up();
    }
  });
  if (!st.ok()) retry_or_give_up();
}

void Agent::shutdown(std::uint64_t grace_ms, int first_signal) {
  if (state_ == State::kStopping || finishing_) return;
  if (!supervisor_->running()) {
    state_ = State::kStopping;
    finish();
    return;
  }
  state_ = State::kStopping;
  supervisor_->signal_group(first_signal);
  kill_timer_ = loop_.add_timer_ms(grace_ms, [this] {
    kill_timer_ = 0;
    say("grace period over, sending SIGKILL");
    supervisor_->signal_group(SIGKILL);
  });
}

void Agent::on_exited(const ExitInfo& info) {
  exited_ = true;
  exit_ = info;
  probing_ = false;
  if (kill_timer_) loop_.cancel_timer(kill_timer_);
  kill_timer_ = 0;
  state_ = State::kExited;
  say("command exited: " + std::string(info.signaled ? "signal " : "code ") + std::to_string(info.code));
  events_->exit(static_cast<std::uint64_t>(info.pid), info.signaled, info.code);
  finish();
}

void Agent::finish() {
  if (finishing_) return;
  finishing_ = true;
  probing_ = false;
  if (probe_timer_) loop_.cancel_timer(probe_timer_);
  if (opt_.pid1 && ::getpid() == 1) {
    // Everything left (daemons, stragglers) dies now; reap it so nothing is left behind.
    ::kill(-1, SIGKILL);
    while (waitpid(-1, nullptr, 0) > 0 || errno == EINTR) {
    }
  }
  events_->flush(opt_.flush_ms, [this] { loop_.stop(); });
}

}  // namespace kiln::agent
