// One microVM: cold boot, the agent's events, connect/check, stop and cleanup. Every change of
// phase goes through the lifecycle's table.
#include "src/pool/vm.h"

#include <algorithm>
#include <sstream>

#include "common/io.h"
#include "common/protocol/messages.h"

namespace kiln::kilnd::pool {

using asio::use_awaitable;

VmShared::VmShared(asio::io_context& io_context, VmmBackendOptions o)
    : io(io_context), options(std::move(o)), launcher(make_vmm_launcher(io_context, options)) {
  if (options.snapshot_dir.empty()) return;
  auto opened = SnapshotStore::open(options.snapshot_dir);
  if (opened.ok()) {
    store = std::make_shared<SnapshotStore>(std::move(*opened));
  } else {
    store_error = opened.error().message;
  }
}

Result<std::string> VmShared::snapshot_key(const InstanceSpec& spec) const {
  const VmmBackendOptions& o = options;
  return SnapshotStore::key_for(
      spec, {o.kernel_path, o.initrd_path, o.vmm_path, o.boot_args + launcher->snapshot_flavor(), o.guest_cid});
}

Vm::Vm(std::shared_ptr<const VmShared> shared, InstanceSpec spec, InstanceCallbacks cb, std::uint64_t index)
    : shared_(std::move(shared)), io_(shared_->io), o_(shared_->options), spec_(std::move(spec)), cb_(std::move(cb)),
      index_(index), resources_(o_.run_dir + "/" + spec_.instance_id), boot_timer_(io_), exit_wait_(io_),
      adopt_gate_(io_) {}

void Vm::begin() { asio::co_spawn(io_, boot(shared_from_this()), asio::detached); }

void Vm::begin_parked() {
  life_.to(Phase::kParking);
  parked_start_ = true;
  begin();
}

bool Vm::advance(Phase next) {
  if (gone()) return false;
  life_.to(next);
  return true;
}

void Vm::connect(ConnectHandler done) {
  if (gone() || !link_) {
    asio::post(io_, [done] { done(make_error("instance is stopped")); });
    return;
  }
  asio::co_spawn(
      io_,
      [self = shared_from_this(), link = link_, done = std::move(done)]() -> asio::awaitable<void> {
        done(co_await link->connect_invoke());
      },
      asio::detached);
}

void Vm::check(std::function<void(bool)> done) {
  if (gone() || !link_) {
    asio::post(io_, [done] { done(false); });
    return;
  }
  asio::co_spawn(
      io_,
      [self = shared_from_this(), link = link_, done = std::move(done)]() -> asio::awaitable<void> {
        const bool healthy = co_await link->healthy();
        if (!self->life_.is(Phase::kDestroyed)) done(healthy);
      },
      asio::detached);
}

void Vm::stop(std::function<void()> done) {
  if (life_.is(Phase::kStopping)) {
    asio::post(io_, std::move(done));
    return;
  }
  const bool graceful = life_.agent_launched();  // kiln-init can be asked to shut down
  life_.to(Phase::kStopping);
  boot_timer_.cancel();
  asio::co_spawn(io_, do_stop(shared_from_this(), std::move(done), graceful), asio::detached);
}

void Vm::destroy() {
  if (life_.is(Phase::kDestroyed)) return;
  life_.to(Phase::kDestroyed);
  cb_ = InstanceCallbacks{};
  adopt_gate_.cancel();
  if (vmm_) vmm_->kill_and_reap();
  cleanup();
}

// Per invocation (REPORT) it is read at most once a second (`fresh`: now), which keeps a /proc
// read off most invocations' path; VmHWM only grows, so a skipped read under-reports at most
// the last second's growth.
std::uint64_t Vm::max_memory_mib(bool fresh) {
  const auto now = Clock::now();
  if (!fresh && peak_read_at_ && now - *peak_read_at_ < std::chrono::seconds(1)) return peak_mib_;
  peak_read_at_ = now;
  if (vmm_ && vmm_->running()) {
    // VmHWM: peak resident set of the VMM process (guest memory it touched + its own).
    // Unreadable (the process just ended): the peak so far stands.
    auto status = io::read_file("/proc/" + std::to_string(vmm_->pid()) + "/status", 64 * 1024);
    std::istringstream ss(status.ok() ? *status : std::string());
    for (std::string line; std::getline(ss, line);) {
      if (line.rfind("VmHWM:", 0) == 0) {
        peak_mib_ = std::max<std::uint64_t>(peak_mib_, std::strtoull(line.c_str() + 6, nullptr, 10) / 1024);
      }
    }
  }
  return peak_mib_;
}

void Vm::fail(const std::string& reason) {
  if (gone()) return;
  life_.to(Phase::kEnded);
  boot_timer_.cancel();
  if (vmm_) vmm_->kill();
  if (cb_.ended) cb_.ended(reason);
}

void Vm::notice(const std::string& text) {
  if (cb_.notice && !life_.is(Phase::kDestroyed)) cb_.notice(text);
}

void Vm::mark_ready() {
  if (gone() || life_.is(Phase::kReady)) return;
  life_.to(Phase::kReady);
  boot_timer_.cancel();
  if (cb_.ready) cb_.ready();
}

void Vm::release_vmm() {
  if (link_) link_->close();
  if (!vmm_) return;
  vmm_->kill_and_reap();
  if (Status st = vmm_->release(); !st.ok()) notice(st.error().message);
}

void Vm::cleanup() {
  release_vmm();
  boot_timer_.cancel();
  exit_wait_.cancel();
  resources_.release();
}

asio::awaitable<void> Vm::boot(std::shared_ptr<Vm> self) {
  Status st = co_await self->boot_steps();
  if (!st.ok()) self->fail(st.error().message);
}

asio::awaitable<Status> Vm::boot_steps() {
  if (gone()) co_return ok_status();  // stopped or dropped before it began: nothing to start
  if (Status st = resources_.set_up(); !st.ok()) co_return st;
  const auto& store = shared_->store;
  if (store) {
    auto key = shared_->snapshot_key(spec_);
    if (key.ok()) {
      key_ = *key;
    } else {
      notice("starts without snapshots: " + key.error().message);
    }
  }
  if (parked_start_ && (key_.empty() || !store->find(key_))) co_return make_error("no snapshot to park a kiln-vmm for");
  if (!key_.empty()) {
    if (auto snap = store->find(key_)) {
      if (!parked_start_) life_.to(Phase::kRestoring);
      if (!spec_.rootfs_index_digest.empty() && o_.lazy_prefetch) {
        // A lazy root disk: the chunks the snapshotted instance had read, fetched ahead.
        auto list = read_prefetch_list(*snap);
        if (list.ok()) {
          o_.lazy_prefetch(spec_.rootfs_index_digest, std::move(*list));
        } else {
          notice("no prefetch for the snapshot's lazy root disk: " + list.error().message);
        }
      }
      bool refused = false;  // the VMM refused the snapshot's files (not a transient failure)
      Status restored = co_await restore_steps(*snap, &refused);
      if (gone()) co_return ok_status();
      if (restored.ok()) {
        store->count_restore();
        notice("restored from snapshot " + key_.substr(0, 12) + " in " +
               std::to_string(std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - restore_t0_).count()) +
               " ms (" + restore_phases_ + ")");
        mark_ready();
        co_return ok_status();
      }
      // A snapshot the VMM refuses is set aside; any other failure (a slow start, the identity
      // round trip) leaves it for the next instance. Either way this one cold-boots (a parked
      // VMM no instance took over yet just ends: the instance that comes starts afresh).
      if (life_.parked()) {
        if (refused) store->set_aside(key_);
        co_return restored;
      }
      if (refused) {
        store->set_aside(key_);
        notice("snapshot " + key_.substr(0, 12) + " did not load (" + restored.error().message + "); set aside, cold boot");
      } else {
        notice("restore from snapshot " + key_.substr(0, 12) + " failed (" + restored.error().message + "); cold boot");
      }
      release_vmm();
    }
  }
  co_return co_await cold_boot_steps();
}

asio::awaitable<Status> Vm::start_vmm(const SnapshotPaths* snapshot) {
  vmm_ = shared_->launcher->make(spec_, index_, resources_.run_dir());
  vmm_->on_exit([weak = weak_from_this()](const std::string& how) {
    if (auto self = weak.lock()) self->on_vmm_exit(how);
  });
  api_.emplace(vmm_->paths().api_sock, [this] { return gone(); });
  std::function<bool()> dropped = [this] { return life_.is(Phase::kDestroyed); };
  Status spawned = co_await vmm_->spawn(snapshot, std::move(dropped));
  if (!spawned.ok()) co_return spawned;
  if (auto net = vmm_->network_summary()) notice(*net);
  // Listen for the agent before the guest runs (it runs from InstanceStart or the load on).
  link_ = std::make_shared<AgentLink>(io_, vmm_->paths().vsock, AgentTimeouts{o_.connect_timeout, o_.check_timeout});
  std::weak_ptr<Vm> weak = weak_from_this();
  co_return link_->listen([this](const std::string& path) { return vmm_->share_socket(path); },
                          [weak](const protocol::Frame& f) {
                            if (auto self = weak.lock()) self->on_event(f);
                          },
                          [weak] {
                            auto self = weak.lock();
                            return self && !self->life_.is(Phase::kDestroyed) && !self->life_.is(Phase::kStopping);
                          });
}

asio::awaitable<Status> Vm::cold_boot_steps() {
  if (!advance(Phase::kConfiguring)) co_return ok_status();
  const auto deadline = Clock::now() + o_.api_timeout;
  Status started = co_await start_vmm(nullptr);
  if (!started.ok()) co_return started;
  Status up = co_await api_->wait_up(deadline);
  if (!up.ok() || gone()) co_return up;
  const VmmPaths& p = vmm_->paths();
  // Named, not a temporary in the co_await expression (GCC 12 destroys those twice).
  const BootConfig config{spec_.vcpus, spec_.memory_mib, p.kernel,     p.initrd,
                          o_.boot_args, p.rootfs,         o_.guest_cid, p.vmm_vsock, p.tap,
                          spec_.network ? spec_.network->bandwidth : net::Bandwidth{}};
  Status configured = co_await api_->configure_and_start(config, deadline);
  if (!configured.ok()) co_return configured;
  if (life_.is(Phase::kConfiguring)) life_.to(Phase::kBooting);  // (kiln-init may have said hello already)
  if (!life_.is(Phase::kBooting) && !life_.is(Phase::kLaunching)) co_return ok_status();
  boot_timer_.expires_after(o_.boot_timeout);
  auto secs = std::to_string(o_.boot_timeout.count() / 1000.0);
  boot_timer_.async_wait([self = shared_from_this(), secs](const beast::error_code& e) {
    if (!e && (self->life_.is(Phase::kBooting) || self->life_.is(Phase::kLaunching))) {
      self->fail("the guest did not report ready within " + secs + " s");
    }
  });
  co_return ok_status();
}

void Vm::on_vmm_exit(const std::string& how) {
  exit_wait_.cancel();
  std::string tail = log_tail(vmm_ ? vmm_->log_path() : "");
  fail("kiln-vmm " + how + (tail.empty() ? "" : ": " + tail));
}

void Vm::on_event(const protocol::Frame& f) {
  if (life_.is(Phase::kDestroyed)) return;
  switch (f.type) {
    case protocol::FrameType::kHello: {
      auto h = protocol::decode_hello(f.payload);
      // "waiting": a cold-booted kiln-init asks for its launch spec (a restored one is launched).
      if (h.ok() && h->state == "waiting" && (life_.is(Phase::kConfiguring) || life_.is(Phase::kBooting))) {
        life_.to(Phase::kLaunching);
        asio::co_spawn(io_, send_spec(shared_from_this()), asio::detached);
      }
      break;
    }
    case protocol::FrameType::kReady:
      if (!life_.is(Phase::kLaunching)) break;
      if (!snapshot_first_ready()) mark_ready();
      break;
    case protocol::FrameType::kNotReady: {
      auto n = protocol::decode_not_ready(f.payload);
      fail("the function is not ready: " + (n.ok() ? n->message : std::string("(malformed event)")));
      break;
    }
    case protocol::FrameType::kLog: {
      auto l = protocol::decode_log(f.payload);
      if (l.ok() && cb_.log) cb_.log(*l);
      break;
    }
    case protocol::FrameType::kDropped: {
      auto d = protocol::decode_dropped(f.payload);
      if (d.ok() && cb_.log) {
        protocol::LogEvent e;
        e.stream = protocol::LogStream::kStderr;
        e.data = "[kiln] " + std::to_string(d->count) + " log lines dropped (guest buffer full)";
        cb_.log(e);
      }
      break;
    }
    case protocol::FrameType::kExit: {
      auto e = protocol::decode_exit(f.payload);
      std::string what = !e.ok() ? "the function's process ended"
                         : e->signaled ? "the function's process was killed by signal " + std::to_string(e->code)
                                       : "the function's process exited with code " + std::to_string(e->code);
      fail(what);
      break;
    }
    default:
      break;  // unknown event types are ignored (forward compatibility)
  }
}

asio::awaitable<void> Vm::send_spec(std::shared_ptr<Vm> self) {
  Status sent = co_await self->link_->send_launch_spec(self->spec_.launch);
  if (!sent.ok()) self->fail(sent.error().message);
}

asio::awaitable<void> Vm::do_stop(std::shared_ptr<Vm> self, std::function<void()> done, bool graceful) {
  if (graceful && self->vmm_ && self->vmm_->running() && self->link_) {
    // Graceful: kiln-init stops the command (SIGTERM, grace, SIGKILL) and reboots, which ends
    // the VMM; bounded by the grace period plus a margin, then SIGKILL.
    const auto deadline = Clock::now() + self->o_.stop_grace + std::chrono::milliseconds(1000);
    co_await self->link_->request_shutdown(self->o_.stop_grace, deadline);
    if (self->vmm_->running()) {
      self->exit_wait_.expires_at(deadline);
      beast::error_code ec;
      co_await self->exit_wait_.async_wait(asio::redirect_error(use_awaitable, ec));
    }
  }
  self->max_memory_mib();
  if (self->vmm_) self->vmm_->kill_and_reap();
  // One line per stop, with what kiln-vmm warned of, if anything (a lost call's diagnosis).
  std::string w = log_warnings(self->vmm_ ? self->vmm_->log_path() : "");
  self->notice(w.empty() ? std::string("stopped") : "stopped; kiln-vmm warned: " + w);
  self->cleanup();
  asio::post(self->io_, std::move(done));
}

}  // namespace kiln::kilnd::pool
