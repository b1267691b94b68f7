// Warm starts of a Vm: restore from a snapshot (PUT /snapshot/load, then the instance's
// identity), a parked VMM (loaded paused ahead) and its adoption, and the first snapshot of a
// key (pause, PUT /snapshot/create, resume; kept only whole).
#include "src/pool/vm.h"

#include <algorithm>
#include <filesystem>

namespace kiln::kilnd::pool {
namespace {

long long ms_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - t0).count();
}

}  // namespace

bool Vm::adopt(const InstanceSpec& spec, InstanceCallbacks& cb) {
  if (!life_.parked() || spec.instance_id != spec_.instance_id) return false;
  if (auto key = shared_->snapshot_key(spec); !key.ok() || *key != key_) return false;
  // The snapshot must still be the one the parked VMM bound (not set aside or replaced since).
  auto snap = shared_->store ? shared_->store->find(key_) : std::nullopt;
  if (!snap || file_id(snap->state) != bound_state_ || file_id(snap->mem) != bound_mem_) return false;
  spec_ = spec;
  cb_ = std::move(cb);
  life_.to(Phase::kRestoring);
  // Its network was built when it was parked (no instance's log then): said now, for this one.
  if (auto net = vmm_ ? vmm_->network_summary() : std::nullopt) notice(*net + ", when parked");
  std::error_code ec;
  std::filesystem::remove(resources_.run_dir() + "/parked", ec);
  adopt_gate_.cancel();
  return true;
}

void Vm::restore_phase(const std::string& name) {
  restore_phases_ += (restore_phases_.empty() ? "" : ", ") + name + " " + std::to_string(ms_since(phase_start_));
  phase_start_ = Clock::now();
}

asio::awaitable<Status> Vm::restore_steps(const SnapshotPaths& snap, bool* refused) {
  restore_t0_ = phase_start_ = Clock::now();
  restore_phases_.clear();
  auto deadline = Clock::now() + o_.api_timeout;
  bound_state_ = file_id(snap.state);
  bound_mem_ = file_id(snap.mem);
  // Marked before the process exists, so that no observer counts it as an instance's.
  if (parked_start_) write_small(resources_.run_dir() + "/parked", "waiting for an instance\n");
  Status spawned = co_await start_vmm(&snap);
  if (!spawned.ok()) co_return spawned;
  restore_phase("spawn");
  Status up = co_await api_->wait_up(deadline);
  if (!up.ok() || gone()) co_return up;
  restore_phase("api up");
  // A parked VMM loads its snapshot paused now (resume_vm false): the guest stays still, its
  // clock and vsock reset wait for the resume; an instance adopting it only resumes it.
  const VmmSnapshotFiles files = vmm_->vmm_view(snap);
  Status loaded = co_await api_->load_snapshot(files, vmm_->paths().vmm_vsock, !parked_start_, deadline, refused);
  if (!loaded.ok() || gone()) co_return loaded;
  const long long load_ms = ms_since(phase_start_);
  if (!parked_start_) restore_phase("load");
  if (parked_start_) {
    Status warmed = co_await warm_parked(deadline);
    if (!warmed.ok() || gone()) co_return warmed;
    const long long warm_ms = ms_since(phase_start_);
    Status adopted = co_await wait_for_adoption();
    if (!adopted.ok()) co_return adopted;
    // The restore goes on now that an instance adopted this VMM; its clock starts here.
    restore_phases_ = "parked kiln-vmm, load paused ahead " + std::to_string(load_ms) + ", warmed ahead " +
                      std::to_string(warm_ms);
    restore_t0_ = phase_start_ = Clock::now();
    deadline = restore_t0_ + o_.api_timeout;
    Status resumed = co_await api_->resume(deadline);
    if (!resumed.ok() || gone()) co_return resumed;
    restore_phase("resume");
  }
  if (!advance(Phase::kIdentifying)) co_return ok_status();
  const std::function<bool()> give_up = [this] { return gone(); };
  auto sent = co_await link_->send_identity(spec_.launch.hostname, spec_.instance_id, give_up);
  if (gone()) co_return ok_status();
  if (!sent.ok()) co_return sent.error();
  restore_phase(sent->attempts == 1 ? "identity" : "identity (" + std::to_string(sent->attempts) + " tries)");
  // kiln-init's ack says how long its part took and what its network refresh did.
  if (!sent->message.empty()) notice("guest: " + sent->message);
  co_return ok_status();
}

asio::awaitable<Status> Vm::warm_parked(Clock::time_point deadline) {
  phase_start_ = Clock::now();
  Status resumed = co_await api_->resume(deadline);
  if (!resumed.ok() || gone()) co_return resumed;
  const std::function<bool()> give_up = [this] { return gone(); };
  auto sent = co_await link_->send_identity("", "", give_up);
  if (gone()) co_return ok_status();
  if (!sent.ok()) co_return sent.error().wrap("warming the parked guest");
  co_return co_await api_->pause(deadline);
}

asio::awaitable<Status> Vm::wait_for_adoption() {
  if (life_.is(Phase::kParking)) {
    life_.to(Phase::kParked);
    adopt_gate_.expires_at(Clock::time_point::max());
    beast::error_code ec;
    co_await adopt_gate_.async_wait(asio::redirect_error(asio::use_awaitable, ec));
  }
  if (gone() || life_.parked()) co_return make_error("the parked kiln-vmm was not adopted");
  co_return ok_status();
}

bool Vm::snapshot_first_ready() {
  const auto& store = shared_->store;
  if (!store || key_.empty()) return false;
  auto tmp = store->begin(key_);
  if (!tmp.ok()) notice("no snapshot: " + tmp.error().message);
  if (!tmp.ok() || !*tmp) return false;  // it exists, or another instance is taking it
  life_.to(Phase::kSnapshotting);
  boot_timer_.cancel();  // the snapshot has its own deadline
  asio::co_spawn(io_, snapshot_then_ready(shared_from_this(), **tmp), asio::detached);
  return true;
}

asio::awaitable<void> Vm::snapshot_then_ready(std::shared_ptr<Vm> self, SnapshotPaths tmp) {
  const auto t0 = Clock::now();
  // Writing the memory file can take long on a loaded host: the boot allowance, not the API's.
  const auto deadline = t0 + std::max(self->o_.api_timeout, self->o_.boot_timeout);
  auto target = self->vmm_->snapshot_target(tmp);
  Status st = target.ok() ? ok_status() : Status(target.error());
  bool paused = false;
  if (st.ok()) {
    st = co_await self->api_->pause(deadline);
    paused = st.ok();
  }
  if (paused) st = co_await self->api_->create_snapshot(*target, deadline);
  Status resumed = ok_status();
  if (paused && !self->gone()) resumed = co_await self->api_->resume(Clock::now() + self->o_.api_timeout);
  // kiln-vmm kept the guest's time still while paused (so a restore starts where the snapshot
  // stopped): its wall clock is behind by the pause until the identity sets it again.
  std::string clock_note;
  if (paused && resumed.ok() && !self->gone()) {
    const auto sync_t0 = Clock::now();
    const std::function<bool()> give_up = [self] { return self->gone(); };
    auto synced = co_await self->link_->send_identity(self->spec_.launch.hostname, self->spec_.instance_id, give_up);
    if (!synced.ok()) resumed = synced.error().wrap("setting the guest's clock");
    clock_note = " (guest clock set again in " + std::to_string(ms_since(sync_t0)) + " ms)";
  }
  Status collected = self->vmm_->collect_snapshot(tmp, st.ok());
  if (st.ok()) st = collected;
  if (st.ok() && !self->spec_.rootfs_index_digest.empty() && self->o_.lazy_read_order) {
    st = write_prefetch_list(tmp, self->o_.lazy_read_order(self->spec_.rootfs_index_digest));
  }
  SnapshotStore& store = *self->shared_->store;
  if (st.ok()) st = store.commit(self->key_, tmp);
  else store.abandon(self->key_, tmp);
  if (st.ok() && self->snapshot_taken_) self->snapshot_taken_(self->key_);
  self->notice(st.ok() ? "snapshot " + self->key_.substr(0, 12) + " taken in " + std::to_string(ms_since(t0)) + " ms" + clock_note
                       : "no snapshot: " + st.error().message);
  if (!resumed.ok()) {
    self->fail("resuming after the snapshot: " + resumed.error().message);
    co_return;
  }
  self->mark_ready();
}

}  // namespace kiln::kilnd::pool
