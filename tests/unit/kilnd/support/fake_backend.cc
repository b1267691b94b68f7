// FakeBackend: scripted instances for pool, invoke and daemon unit tests.
#include "tests/unit/kilnd/support/fake_backend.h"

#include <sys/socket.h>

#include <utility>

namespace kiln::kilnd::test {

class FakeBackend::Fake : public pool::VmInstance {
 public:
  Fake(FakeBackend& b, std::string id, std::shared_ptr<State> st) : b_(b), id_(std::move(id)), st_(std::move(st)) {}
  ~Fake() override { st_->destroyed = true; }
  void connect(pool::ConnectHandler done) override {
    if (!b_.io_ || !b_.server || b_.fail_connect) {
      done(make_error("fake: connect refused"));
      return;
    }
    local::socket host(*b_.io_), guest(*b_.io_);
    asio::local::connect_pair(host, guest);
    b_.server(std::move(guest));
    done(std::move(host));
  }
  void check(std::function<void(bool)> done) override { st_->checks.push_back(std::move(done)); }
  void stop(std::function<void()> done) override {
    st_->stopped = true;
    b_.stopped_.push_back(id_);
    if (b_.hold_stops) {
      st_->stop_done = std::move(done);
      return;
    }
    done();
  }
  std::uint64_t max_memory_mib() const override { return 42; }

 private:
  FakeBackend& b_;
  std::string id_;
  std::shared_ptr<State> st_;
};

std::unique_ptr<pool::VmInstance> FakeBackend::start(const pool::InstanceSpec& spec, pool::InstanceCallbacks cb) {
  auto st = std::make_shared<State>();
  st->cb = std::move(cb);
  states_[spec.instance_id] = st;
  started_.push_back(spec.instance_id);
  specs[spec.instance_id] = spec;
  if (auto_ready && io_) {
    std::string id = spec.instance_id;
    asio::post(*io_, [this, id] { ready(id); });
  }
  return std::make_unique<Fake>(*this, spec.instance_id, st);
}

void FakeBackend::ready(const std::string& id) {
  auto st = states_.at(id);
  if (!st->destroyed && !st->stopped) st->cb.ready();
}

void FakeBackend::end(const std::string& id, const std::string& reason) {
  auto st = states_.at(id);
  if (!st->destroyed && !st->stopped) st->cb.ended(reason);
}

void FakeBackend::log(const std::string& id, const std::string& line, const std::string& request_id,
                      std::uint64_t ts_ns) {
  auto st = states_.at(id);
  protocol::LogEvent e;
  e.data = line;
  e.request_id = request_id;
  e.ts_ns = ts_ns;
  if (!st->destroyed && (!st->stopped || st->stop_done)) st->cb.log(e);
}

void FakeBackend::finish_stop(const std::string& id) {
  auto st = states_.at(id);
  if (auto done = std::exchange(st->stop_done, nullptr)) done();
}

void FakeBackend::answer_checks(const std::string& id, bool healthy) {
  auto st = states_.at(id);
  auto checks = std::move(st->checks);
  st->checks.clear();
  for (auto& c : checks) c(healthy);
}

std::size_t FakeBackend::pending_checks(const std::string& id) const { return states_.at(id)->checks.size(); }

std::vector<std::string> FakeBackend::live() const {
  std::vector<std::string> out;
  for (auto& [id, st] : states_) {
    if (!st->destroyed && !st->stopped) out.push_back(id);
  }
  return out;
}

}  // namespace kiln::kilnd::test
