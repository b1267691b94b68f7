// The invocation service over a function table on the fake backend (no HTTP): admission
// returns each typed refusal in its order (not found, stopping, not ready with the image's
// state and reason, payload too large, quota), a DryRun check holds no quota slot, and a run
// writes START/END/REPORT for its request and counts it.
#include <gtest/gtest.h>

#include <chrono>
#include <memory>
#include <optional>
#include <string>

#include "src/functions/function_table.h"
#include "src/invoke/invocation_service.h"
#include "src/registry/function_store.h"
#include "tests/unit/kilnd/support/daemon_harness.h"

namespace kiln::kilnd::invoke {
namespace {

constexpr const char* kAcme = "acme";

tenants::TenantsConfig acme_with_one_invocation() {
  tenants::Tenant t;
  t.name = kAcme;
  t.token_sha256 = std::string(64, 'a');
  t.quotas.max_concurrent_invocations = 1;
  tenants::TenantsConfig c;
  c.tenants.push_back(t);
  return c;
}

class InvocationServiceTest : public test::StateDirTest {
 protected:
  void SetUp() override {
    StateDirTest::SetUp();
    backend_.auto_ready = true;
    backend_.server = [this](local::socket s) { asio::co_spawn(io_, test::fake_guest(std::move(s)), asio::detached); };
    auto store = registry::FunctionStore::open(dir_ + "/functions");
    ASSERT_TRUE(store.ok()) << store.error().message;
    store_ = std::make_unique<registry::FunctionStore>(std::move(*store));
    metrics::declare_kilnd_metrics(metrics_);
    functions::FunctionTableOptions o;
    o.logs_dir = dir_;
    table_ = std::make_unique<functions::FunctionTable>(io_, o, backend_, test::fake_build, *store_, logs_, metrics_, auth_);
    service_ = std::make_unique<InvocationService>(*table_, metrics_);
  }
  void TearDown() override {
    service_.reset();
    table_.reset();
    StateDirTest::TearDown();
  }

  // Runs the loop until `done()` holds (at most 10 s).
  template <typename Pred>
  bool run_until(Pred done) {
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (!done() && std::chrono::steady_clock::now() < deadline) io_.run_one_for(std::chrono::milliseconds(10));
    return done();
  }

  // Deploys without waiting for its image.
  void deploy(const std::string& tenant, const std::string& name, const std::string& body) {
    registry::FieldError fe;
    auto config = registry::parse_function_config(name, body, &fe);
    ASSERT_TRUE(config.ok()) << fe.message;
    bool created = false;
    ASSERT_TRUE(table_->deploy(tenant, std::move(*config), &created).ok());
  }
  // Deploys and runs the loop until its pool exists.
  void deploy_ready(const std::string& tenant, const std::string& name) {
    deploy(tenant, name, R"({"image":"oci:/img:1","timeout_ms":2000})");
    ASSERT_TRUE(run_until([&] { return table_->find(registry::function_key(tenant, name))->pool != nullptr; }));
  }

  static const Refusal* refusal(const std::variant<Admission, Refusal>& a) { return std::get_if<Refusal>(&a); }
  static std::optional<RefusalKind> kind(const std::variant<Admission, Refusal>& a) {
    return refusal(a) ? std::optional(refusal(a)->kind) : std::nullopt;
  }

  asio::io_context io_;
  // Keeps run_one_for() waiting while the loop has nothing to do (an image build on its worker).
  asio::executor_work_guard<asio::io_context::executor_type> work_ = asio::make_work_guard(io_);
  test::FakeBackend backend_{&io_};
  std::unique_ptr<registry::FunctionStore> store_;
  logs::LogStore logs_{logs::LogStoreOptions{}};  // memory only
  metrics::Metrics metrics_;
  tenants::Authenticator auth_{acme_with_one_invocation()};
  std::unique_ptr<functions::FunctionTable> table_;
  std::unique_ptr<InvocationService> service_;
};

TEST_F(InvocationServiceTest, RefusalsInAdmissionOrder) {
  auto missing = service_->admit("", "nope", 0);
  ASSERT_EQ(kind(missing), RefusalKind::kNotFound);
  EXPECT_EQ(refusal(missing)->name, "nope");
  // Another namespace's function is not found either.
  deploy_ready(kAcme, "f");
  EXPECT_EQ(kind(service_->admit("", "f", 0)), RefusalKind::kNotFound);

  // The image is building until the loop hears from the worker: not ready, with its state.
  deploy("", "slow", R"({"image":"oci:/img:1"})");
  auto building = service_->admit("", "slow", kMaxPayloadBytes + 1);  // not ready comes first
  ASSERT_EQ(kind(building), RefusalKind::kNotReady);
  EXPECT_EQ(refusal(building)->image_state, registry::ImageState::kBuilding);

  deploy("", "broken", R"({"image":"oci:/missing:1"})");
  ASSERT_TRUE(run_until([&] { return table_->find("broken")->record.image.state == registry::ImageState::kFailed; }));
  auto failed = service_->admit("", "broken", 0);
  ASSERT_EQ(kind(failed), RefusalKind::kNotReady);
  EXPECT_EQ(refusal(failed)->image_state, registry::ImageState::kFailed);
  EXPECT_NE(refusal(failed)->image_reason.find("manifest unknown"), std::string::npos);

  EXPECT_EQ(kind(service_->admit(kAcme, "f", kMaxPayloadBytes + 1)), RefusalKind::kPayloadTooLarge);
  EXPECT_FALSE(kind(service_->admit(kAcme, "f", kMaxPayloadBytes)));

  table_->begin_stopping();
  EXPECT_EQ(kind(service_->admit(kAcme, "f", kMaxPayloadBytes + 1)), RefusalKind::kStopping);
  EXPECT_EQ(kind(service_->admit("", "broken", 0)), RefusalKind::kStopping);
  EXPECT_EQ(kind(service_->admit("", "nope", 0)), RefusalKind::kNotFound);
}

TEST_F(InvocationServiceTest, QuotaSlotsAndDryRunChecks) {
  deploy_ready(kAcme, "f");
  auto first = service_->admit(kAcme, "f", 2);
  ASSERT_FALSE(kind(first));
  EXPECT_EQ(service_->in_flight(kAcme), 1u);
  const Admission& a = std::get<Admission>(first);
  EXPECT_EQ(a.key, "acme/f");
  EXPECT_EQ(a.meta.function, "f");  // the user's name, not the key
  EXPECT_FALSE(a.meta.request_id.empty());
  EXPECT_EQ(a.meta.timeout_ms, 2000u);

  auto second = service_->admit(kAcme, "f", 2);
  ASSERT_EQ(kind(second), RefusalKind::kQuota);
  EXPECT_EQ(refusal(second)->quota, "max_concurrent_invocations");
  EXPECT_NE(refusal(second)->message.find("max_concurrent_invocations 1"), std::string::npos)
      << refusal(second)->message;
  // A check only (Lambda DryRun) is admitted without a slot.
  EXPECT_FALSE(kind(service_->admit(kAcme, "f", 2, Admit::kCheckOnly)));
  EXPECT_EQ(service_->in_flight(kAcme), 1u);

  first = Refusal{};  // the first invocation ends: its slot is given back
  EXPECT_EQ(service_->in_flight(kAcme), 0u);
  EXPECT_FALSE(kind(service_->admit(kAcme, "f", 2)));
}

TEST_F(InvocationServiceTest, RunLogsStartEndReportAndCounts) {
  deploy_ready("", "echo");
  auto admitted = service_->admit("", "echo", 2);
  ASSERT_FALSE(kind(admitted));
  Admission a = std::move(std::get<Admission>(admitted));
  const std::string id = a.meta.request_id;
  GuestRequest guest = make_event_request(a.meta, "{}", "application/json");
  std::optional<Invocation> done;
  asio::co_spawn(io_, service_->run(std::move(a), std::move(guest), "event"),
                 [&done](std::exception_ptr e, Invocation inv) {
                   EXPECT_FALSE(e);
                   done = std::move(inv);
                 });
  ASSERT_TRUE(run_until([&] { return done.has_value(); }));
  EXPECT_EQ(done->result.status, InvokeStatus::kOk) << done->result.detail;
  EXPECT_EQ(done->request_id, id);
  EXPECT_TRUE(done->leased);
  EXPECT_TRUE(done->logged);
  logs::LogQuery q;
  q.request_id = id;
  std::string lines;
  for (const auto& e : logs_.query("echo", q)) lines += e.text + "\n";
  EXPECT_NE(lines.find("START RequestId: " + id), std::string::npos) << lines;
  EXPECT_NE(lines.find("END RequestId: " + id), std::string::npos) << lines;
  EXPECT_NE(lines.find("REPORT RequestId: " + id), std::string::npos) << lines;
  EXPECT_NE(metrics_.render().find(R"(kiln_invocations_total{function="echo",kind="event"} 1)"), std::string::npos);
}

}  // namespace
}  // namespace kiln::kilnd::invoke
