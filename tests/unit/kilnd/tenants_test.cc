// Tenants without a daemon: the tenants file (every error names its field), bearer-token
// authentication (missing, invalid, scheme case, Unix socket trust, token_sha256), the
// per-tenant invocation slots, and function records kept per tenant on disk.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <set>

#include "src/registry/function_store.h"
#include "src/tenants/authenticator.h"
#include "src/tenants/concurrency_limiter.h"
#include "src/tenants/tenant_config.h"

namespace kiln::kilnd::tenants {
namespace {

namespace fs = std::filesystem;

constexpr const char* kConfig = R"({
  "tenants": [
    {"name": "acme", "token": "acme-token-0123456789",
     "quotas": {"max_functions": 2, "max_instances": 3, "max_concurrent_invocations": 4}},
    {"name": "beta", "token_sha256": "__SHA__"},
    {"name": "ops", "token": "ops-token-0123456789", "admin": true}
  ]})";

TenantsConfig config(bool unix_admin = true) {
  std::string text = kConfig;
  text.replace(text.find("__SHA__"), 7, token_digest("beta-token-0123456789"));
  auto c = parse_tenants_config(text);
  EXPECT_TRUE(c.ok()) << (c.ok() ? "" : c.error().message);
  c->unix_socket_admin = unix_admin;
  return *c;
}

std::string error_of(std::string_view text) {
  auto c = parse_tenants_config(text);
  return c.ok() ? "<ok>" : c.error().message;
}

TEST(TenantsConfig, ParsesTenantsQuotasAndAdmins) {
  TenantsConfig c = config();
  ASSERT_EQ(c.tenants.size(), 3u);
  EXPECT_EQ(c.tenants[0].name, "acme");
  EXPECT_EQ(c.tenants[0].token_sha256, token_digest("acme-token-0123456789"));
  EXPECT_EQ(c.tenants[0].token_sha256.size(), 64u);
  EXPECT_EQ(*c.tenants[0].quotas.max_functions, 2u);
  EXPECT_EQ(*c.tenants[0].quotas.max_instances, 3u);
  EXPECT_EQ(*c.tenants[0].quotas.max_concurrent_invocations, 4u);
  EXPECT_FALSE(c.tenants[1].quotas.max_functions.has_value());  // unlimited
  EXPECT_TRUE(c.tenants[2].admin);
  EXPECT_TRUE(c.unix_socket_admin);
}

TEST(TenantsConfig, ErrorsNameTheField) {
  const std::string tok = R"("token": "0123456789abcdef")";
  EXPECT_NE(error_of("[]").find("must be a JSON object"), std::string::npos);
  EXPECT_NE(error_of("{}").find("tenants: is required"), std::string::npos);
  EXPECT_NE(error_of(R"({"tenants": [], "extra": 1})").find("extra: unknown field"), std::string::npos);
  EXPECT_NE(error_of(R"({"tenants": [{"name": "Bad_Name", )" + tok + "}]}").find("tenants[0].name"), std::string::npos);
  EXPECT_NE(error_of(R"({"tenants": [{"name": "../x", )" + tok + "}]}").find("tenants[0].name"), std::string::npos);
  EXPECT_NE(error_of(R"({"tenants": [{"name": "a", "token": "short"}]})").find("tenants[0].token: must be at least 16"),
            std::string::npos);
  EXPECT_NE(error_of(R"({"tenants": [{"name": "a", "token_sha256": "abc"}]})").find("tenants[0].token_sha256"),
            std::string::npos);
  EXPECT_NE(error_of(R"({"tenants": [{"name": "a"}]})").find("tenants[0].token: is required"), std::string::npos);
  EXPECT_NE(error_of(R"({"tenants": [{)" + tok + "}]}").find("tenants[0].name: is required"), std::string::npos);
  EXPECT_NE(error_of(R"({"tenants": [{"name": "a", )" + tok + R"(, "token_sha256": ")" + std::string(64, 'a') + "\"}]}")
                .find("not both"),
            std::string::npos);
  EXPECT_NE(error_of(R"({"tenants": [{"name": "a", )" + tok + R"(}, {"name": "a", "token": "another-token-123456"}]})")
                .find("tenants[1].name: duplicate"),
            std::string::npos);
  EXPECT_NE(error_of(R"({"tenants": [{"name": "a", )" + tok + R"(}, {"name": "b", )" + tok + "}]}")
                .find("tenants[1].token: the same token"),
            std::string::npos);
  EXPECT_NE(error_of(R"({"tenants": [{"name": "a", )" + tok + R"(, "quotas": {"max_functions": -1}}]})")
                .find("tenants[0].quotas.max_functions"),
            std::string::npos);
  EXPECT_NE(error_of(R"({"tenants": [{"name": "a", )" + tok + R"(, "quotas": {"max_vms": 1}}]})")
                .find("tenants[0].quotas.max_vms: unknown field"),
            std::string::npos);
  EXPECT_NE(error_of(R"({"tenants": [{"name": "a", )" + tok + R"(, "admin": true, "quotas": {}}]})")
                .find("an admin has no quotas"),
            std::string::npos);
  EXPECT_NE(error_of(R"({"tenants": [], "unix_socket_admin": "yes"})").find("unix_socket_admin"), std::string::npos);
  EXPECT_EQ(error_of(R"({"tenants": [], "unix_socket_admin": false})"), "<ok>");
}

TEST(TenantsConfig, LoadsAFile) {
  char tmpl[] = "/tmp/kilnd-tenants-XXXXXX";
  ASSERT_NE(mkdtemp(tmpl), nullptr);
  std::string path = std::string(tmpl) + "/tenants.json";
  std::ofstream(path) << R"({"tenants": [{"name": "a", "token": "0123456789abcdef"}]})";
  auto c = load_tenants_file(path);
  ASSERT_TRUE(c.ok()) << c.error().message;
  EXPECT_EQ(c->tenants.at(0).name, "a");
  EXPECT_FALSE(load_tenants_file(std::string(tmpl) + "/missing.json").ok());
  fs::remove_all(tmpl);
}

TEST(Authenticator, NoTenantsFileMeansEveryoneIsTheAdmin) {
  Authenticator auth;
  EXPECT_FALSE(auth.enabled());
  for (const char* header : {"", "Bearer whatever", "Basic Zm9vOmJhcg=="}) {
    auto r = auth.authenticate(header, false);
    EXPECT_EQ(r.status, AuthStatus::kOk);
    EXPECT_TRUE(r.principal.admin);
    EXPECT_EQ(r.principal.tenant, "");
  }
}

TEST(Authenticator, BearerTokens) {
  Authenticator auth(config());
  ASSERT_TRUE(auth.enabled());
  auto acme = auth.authenticate("Bearer acme-token-0123456789", false);
  ASSERT_EQ(acme.status, AuthStatus::kOk);
  EXPECT_EQ(acme.principal.name, "acme");
  EXPECT_EQ(acme.principal.tenant, "acme");
  EXPECT_FALSE(acme.principal.admin);
  EXPECT_EQ(*acme.principal.quotas.max_instances, 3u);
  // The scheme is case-insensitive; surrounding blanks do not matter.
  EXPECT_EQ(auth.authenticate("  bEaReR   acme-token-0123456789 ", false).principal.name, "acme");
  // A tenant given by its token's SHA-256.
  EXPECT_EQ(auth.authenticate("Bearer beta-token-0123456789", false).principal.tenant, "beta");
  auto ops = auth.authenticate("Bearer ops-token-0123456789", false);
  EXPECT_TRUE(ops.principal.admin);
  EXPECT_EQ(ops.principal.tenant, "");  // admins act in the admin namespace
  EXPECT_EQ(auth.authenticate("", false).status, AuthStatus::kMissing);
  EXPECT_EQ(auth.authenticate("Basic YWNtZTp4", false).status, AuthStatus::kMissing);
  EXPECT_EQ(auth.authenticate("Bearer", false).status, AuthStatus::kMissing);
  EXPECT_EQ(auth.authenticate("Bearer acme-token-012345678", false).status, AuthStatus::kInvalid);
  EXPECT_EQ(auth.authenticate("Bearer acme-token-01234567890", false).status, AuthStatus::kInvalid);
  EXPECT_EQ(auth.authenticate("Bearer " + token_digest("beta-token-0123456789"), false).status, AuthStatus::kInvalid);
  EXPECT_EQ(auth.authenticate(std::string("Bearer acme-token-0123456789\0x", 30), false).status, AuthStatus::kInvalid);
  EXPECT_EQ(auth.find("acme")->name, "acme");
  EXPECT_EQ(auth.find("nobody"), nullptr);
}

TEST(Authenticator, UnixSocketTrustIsAnOption) {
  Authenticator trusted(config(true));
  auto r = trusted.authenticate("", true);
  EXPECT_EQ(r.status, AuthStatus::kOk);
  EXPECT_TRUE(r.principal.admin);
  EXPECT_EQ(r.principal.name, kImplicitAdmin);
  // A token on the socket still names its tenant.
  EXPECT_EQ(trusted.authenticate("Bearer acme-token-0123456789", true).principal.tenant, "acme");
  EXPECT_EQ(trusted.authenticate("Bearer nope-nope-nope-nope", true).status, AuthStatus::kInvalid);
  Authenticator untrusted(config(false));
  EXPECT_EQ(untrusted.authenticate("", true).status, AuthStatus::kMissing);
}

TEST(Authenticator, ConstantTimeEqual) {
  EXPECT_TRUE(constant_time_equal("abc", "abc"));
  EXPECT_FALSE(constant_time_equal("abc", "abd"));
  EXPECT_FALSE(constant_time_equal("abc", "ab"));
  EXPECT_TRUE(constant_time_equal("", ""));
}

TEST(ConcurrencyLimiter, SlotsAreBoundedPerTenantAndReleased) {
  ConcurrencyLimiter l;
  auto a1 = l.try_acquire("a", 2);
  auto a2 = l.try_acquire("a", 2);
  ASSERT_TRUE(a1 && a2);
  EXPECT_FALSE(l.try_acquire("a", 2).has_value());
  EXPECT_TRUE(l.try_acquire("b", 2).has_value());  // another tenant; released at once
  EXPECT_EQ(l.in_flight("b"), 0u);
  EXPECT_EQ(l.in_flight("a"), 2u);
  ConcurrencyLimiter::Slot moved = std::move(*a1);
  a1.reset();  // the moved-from slot releases nothing
  EXPECT_EQ(l.in_flight("a"), 2u);
  moved.release();
  EXPECT_EQ(l.in_flight("a"), 1u);
  EXPECT_TRUE(l.try_acquire("a", 2).has_value());
  EXPECT_TRUE(l.try_acquire("a", std::nullopt).has_value());  // no limit
  EXPECT_FALSE(l.try_acquire("z", 0).has_value());
  EXPECT_EQ(l.in_flight("z"), 0u);
  // A slot outliving its limiter is harmless.
  std::optional<ConcurrencyLimiter::Slot> late;
  {
    ConcurrencyLimiter gone;
    late = gone.try_acquire("a", 1);
  }
  late.reset();
}

TEST(TenantRecords, FunctionNameProblemsAreSpecific) {
  EXPECT_EQ(*registry::function_name_problem(".."), "must not contain '..'");
  EXPECT_EQ(*registry::function_name_problem("a..b"), "must not contain '..'");
  EXPECT_EQ(*registry::function_name_problem("a/b"), "must not contain '/'");
  EXPECT_EQ(*registry::function_name_problem(std::string("a\0b", 3)), "must not contain NUL bytes");
  EXPECT_EQ(*registry::function_name_problem(""), "must not be empty");
  EXPECT_EQ(*registry::function_name_problem(std::string(65, 'a')), "must be at most 64 characters");
  EXPECT_NE(registry::function_name_problem("a.b")->find("[A-Za-z0-9_-]"), std::string::npos);
  EXPECT_FALSE(registry::function_name_problem("hello_world-2").has_value());
  EXPECT_TRUE(registry::valid_tenant_name("acme-2"));
  EXPECT_FALSE(registry::valid_tenant_name("Acme"));
  EXPECT_FALSE(registry::valid_tenant_name("-a"));
  EXPECT_FALSE(registry::valid_tenant_name(std::string(33, 'a')));
  EXPECT_EQ(registry::function_key("", "f"), "f");
  EXPECT_EQ(registry::function_key("acme", "f"), "acme/f");
}

TEST(TenantRecords, StoreKeepsEachTenantsFunctionsApart) {
  char tmpl[] = "/tmp/kilnd-tstore-XXXXXX";
  ASSERT_NE(mkdtemp(tmpl), nullptr);
  std::string dir = std::string(tmpl) + "/functions";
  registry::FieldError fe;
  {
    auto store = registry::FunctionStore::open(dir);
    ASSERT_TRUE(store.ok());
    for (const char* tenant : {"", "acme", "beta"}) {
      registry::FunctionRecord r;
      r.tenant = tenant;
      r.config = *registry::parse_function_config("same", R"({"image":"x"})", &fe);
      ASSERT_TRUE(store->save(r).ok());
    }
    registry::FunctionRecord bad;
    bad.tenant = "../etc";
    bad.config = *registry::parse_function_config("x", R"({"image":"x"})", &fe);
    EXPECT_FALSE(store->save(bad).ok());
    EXPECT_FALSE(store->remove("x", "..").ok());
    ASSERT_TRUE(store->remove("same", "beta").ok());
  }
  EXPECT_TRUE(fs::exists(dir + "/same.json"));
  EXPECT_TRUE(fs::exists(dir + "/acme/same.json"));
  EXPECT_FALSE(fs::exists(dir + "/beta/same.json"));
  // A record moved into another tenant's directory is refused, not adopted.
  fs::copy_file(dir + "/acme/same.json", dir + "/beta/same.json");
  auto store = registry::FunctionStore::open(dir);
  std::vector<std::string> problems;
  auto all = store->load_all(&problems);
  ASSERT_TRUE(all.ok());
  ASSERT_EQ(all->size(), 2u);
  std::set<std::string> keys;
  for (const auto& r : *all) keys.insert(r.key());
  EXPECT_EQ(keys, (std::set<std::string>{"same", "acme/same"}));
  ASSERT_EQ(problems.size(), 1u);
  EXPECT_NE(problems[0].find("tenant does not match"), std::string::npos);
  fs::remove_all(tmpl);
}

}  // namespace
}  // namespace kiln::kilnd::tenants
