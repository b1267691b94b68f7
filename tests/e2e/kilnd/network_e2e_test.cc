// e2e (label e2e; the nested test host here), issue 17: a function's instance network. The test
// builds its own "internet" inside the test host (which has no network device to the outside):
// a service namespace joined to the host by a veth, holding an HTTP server and dnsmasq on
// addresses the test assigns (198.51.100.2 answers as svc.test; 203.0.113.2 stands for a subnet
// the function denies; 169.254.169.254 for a metadata service), plus an HTTP listener on the
// host itself. A function fetches from the service by name and by address; every denied target
// fails at once inside the guest and its server saw nothing. Then kilnd is killed with SIGKILL
// and restarted: no namespace, veth or TAP of the old instances is left.
#include <gtest/gtest.h>
#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <set>
#include <sstream>
#include <string>
#include <thread>

#include "tests/e2e/lib/kilnd_fixture.h"
#include "tests/support/process.h"

namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using kiln::testing::run;

constexpr const char* kSvcNs = "kiln-e2e-svc";

// CGI: fetches the URL in the query string with the image's wget, bounded by `timeout` (busybox
// 1.35's `wget -T` crashes).
constexpr const char* kFetchScript =
    "#!/bin/sh\n"
    "printf 'Content-Type: text/plain\\r\\n\\r\\n'\n"
    "url=${QUERY_STRING#url=}\n"
    "echo \"ifaces=$(ls /sys/class/net | tr '\\n' ' ')\"\n"
    "start=$(date +%s)\n"
    "if out=$(timeout 5 wget -q -O - \"$url\" 2>&1); then echo \"fetch=ok\"; else echo \"fetch=failed\"; fi\n"
    "echo \"seconds=$(( $(date +%s) - start ))\"\n"
    "echo \"out=$(echo $out | head -c 200)\"\n";

int sh(const std::string& cmd) { return run({"/bin/sh", "-c", cmd}); }

class NetworkE2e : public kiln::e2e::KilndTest {
 protected:
  void SetUp() override {
    KilndTest::SetUp();
    if (IsSkipped() || HasFatalFailure()) return;
    logs_ = state_ + "-svc";
    fs::create_directories(logs_ + "/www");
    std::FILE* f = std::fopen((logs_ + "/www/hello.txt").c_str(), "w");
    ASSERT_NE(f, nullptr);
    std::fputs("service says hello\n", f);
    std::fclose(f);
    sh(std::string("ip netns del ") + kSvcNs + " 2>/dev/null; ip link del kesvc0 2>/dev/null");
    const std::string in_svc = std::string("ip netns exec ") + kSvcNs + " ";
    const std::string setup =
        std::string("set -e; ip netns add ") + kSvcNs + "; ip link add kesvc0 type veth peer name eth0 netns " + kSvcNs +
        "; ip addr add 198.51.100.1/24 dev kesvc0; ip link set kesvc0 up; " + in_svc + "ip link set lo up; " + in_svc +
        "ip addr add 198.51.100.2/24 dev eth0; " + in_svc + "ip addr add 203.0.113.2/24 dev eth0; " + in_svc +
        "ip addr add 169.254.169.254/32 dev eth0; " + in_svc + "ip link set eth0 up; " + in_svc +
        "ip route add default via 198.51.100.1; ip route add 203.0.113.0/24 via 198.51.100.2; "
        "ip route add 169.254.169.254/32 via 198.51.100.2; " +
        // One verbose httpd per address (-vv logs each request's url): its log counts what reached it.
        in_svc + "busybox httpd -f -vv -p 198.51.100.2:8080 -h " + logs_ + "/www 2>" + logs_ + "/svc.log & " + in_svc +
        "busybox httpd -f -vv -p 203.0.113.2:8080 -h " + logs_ + "/www 2>" + logs_ + "/denied.log & " + in_svc +
        "busybox httpd -f -vv -p 169.254.169.254:80 -h " + logs_ + "/www 2>" + logs_ + "/metadata.log & " +
        // The host itself: a listener on its service-side address.
        "busybox httpd -f -vv -p 198.51.100.1:8901 -h " + logs_ + "/www 2>" + logs_ + "/host.log & " + in_svc +
        "dnsmasq --keep-in-foreground --no-resolv --no-hosts --listen-address=198.51.100.2 --bind-interfaces "
        "--address=/svc.test/198.51.100.2 --pid-file=" + logs_ + "/dnsmasq.pid --log-facility=" + logs_ +
        "/dns.log --log-queries & sleep 0.5";
    ASSERT_EQ(sh(setup), 0) << setup;
  }
  void TearDown() override {
    sh(std::string("ip netns pids ") + kSvcNs + " 2>/dev/null | xargs -r kill -9; pkill -9 -f 'httpd -f -vv -p 198.51.100.1:8901'");
    sh(std::string("ip netns del ") + kSvcNs + " 2>/dev/null; ip link del kesvc0 2>/dev/null");
    KilndTest::TearDown();
    std::error_code ec;
    fs::remove_all(logs_, ec);
  }
  // What the guest got for `url`: fetch=ok|failed, seconds, out, ifaces.
  std::map<std::string, std::string> fetch(const std::string& function, const std::string& url) {
    auto r = call("GET", "/v1/functions/" + function + "/http/cgi-bin/fetch?url=" + url);
    EXPECT_EQ(r.status, 200) << r.body;
    std::printf("%s -> %s", url.c_str(), r.body.c_str());
    return kiln::e2e::key_values(r.body);
  }
  // Requests a server logged (busybox httpd -vv: one "url:" line per request).
  int hits(const std::string& log) {
    std::string text = kiln::e2e::slurp(logs_ + "/" + log);
    int n = 0;
    for (size_t at = 0; (at = text.find("url:", at)) != std::string::npos; ++at) ++n;
    return n;
  }
  // "INDEX:NAME" of the host's links named PREFIX... (an index is never reused for a new link).
  std::set<std::string> links_named(const std::string& prefix) {
    std::string out = logs_ + "/links";
    run({"/bin/sh", "-c", "ip -o link show | awk -F': ' '{sub(/@.*/, \"\", $2); print $1 \":\" $2}' | grep ':" + prefix +
                              "' || true"},
        out);
    std::set<std::string> links;
    std::istringstream in(kiln::e2e::slurp(out));
    for (std::string line; std::getline(in, line);) links.insert(line);
    return links;
  }
  std::string logs_;
};

TEST_F(NetworkE2e, EgressReachesTheServiceAndEveryDeniedTargetFailsAtOnce) {
  start();
  json config = kiln::e2e::cgi_function_config(kilnd_->paths(), {{"fetch", kFetchScript}});
  config["timeout_ms"] = 120000;
  config["network"] = {{"mode", "egress"}, {"deny", {"203.0.113.0/24"}}, {"dns", {"198.51.100.2"}}};
  auto deployed = kilnd_->deploy("net", config);
  ASSERT_TRUE(deployed.ok()) << deployed.error().message;
  ASSERT_EQ((*deployed)["image"]["state"], "ready") << deployed->dump();

  auto by_name = fetch("net", "http://svc.test:8080/hello.txt");
  EXPECT_EQ(by_name["fetch"], "ok");
  EXPECT_EQ(by_name["out"], "service says hello");
  EXPECT_EQ(by_name["ifaces"], "eth0 lo ");
  auto by_address = fetch("net", "http://198.51.100.2:8080/hello.txt");
  EXPECT_EQ(by_address["fetch"], "ok");
  EXPECT_EQ(by_address["out"], "service says hello");
  const int served = hits("svc.log");
  EXPECT_EQ(served, 2);
  std::printf("network-e2e: by name and by address: ok (service saw %d requests)\n", served);

  struct Denied {
    const char* what;
    std::string url;
    const char* log;
  };
  const Denied denied[] = {
      {"the host itself (a host port on its address)", "http://198.51.100.1:8901/hello.txt", "host.log"},
      {"kilnd's API port", "http://198.51.100.1:" + std::to_string(kilnd_->tcp_port()) + "/healthz", nullptr},
      {"the metadata address", "http://169.254.169.254/hello.txt", "metadata.log"},
      {"a CIDR in the function's deny", "http://203.0.113.2:8080/hello.txt", "denied.log"},
  };
  for (const Denied& d : denied) {
    auto r = fetch("net", d.url);
    EXPECT_EQ(r["fetch"], "failed") << d.what;
    // Refused at once (TCP reset / ICMP), not a 5 s timeout.
    EXPECT_LT(std::stoi(r["seconds"].empty() ? "99" : r["seconds"]), 4) << d.what;
    if (d.log) {
      EXPECT_EQ(hits(d.log), 0) << d.what << ": the target saw a request";
    }
    std::printf("network-e2e: denied %s: %s (%s s), target requests: %d\n", d.what, r["out"].c_str(),
                r["seconds"].c_str(), d.log ? hits(d.log) : 0);
  }
  // The host side can reach its own listener (the refusal above is the guest's rules, not a dead port).
  EXPECT_EQ(run({"busybox", "wget", "-q", "-O", "/dev/null", "http://198.51.100.1:8901/hello.txt"}), 0);

  // SIGKILL kilnd, restart it: the old instances' namespaces (with their TAPs and rules) and
  // veths are gone; what exists belongs to the new kilnd's instances (e.g. a parked VMM's).
  const std::string netns_dir = state_ + "/netns";
  auto netns_files = [&] {
    std::set<std::string> names;
    std::error_code ec;
    for (const auto& e : fs::directory_iterator(netns_dir, ec)) names.insert(e.path().filename().string());
    return names;
  };
  const std::set<std::string> before = netns_files();
  const std::set<std::string> veths_before = links_named("kv");
  ASSERT_FALSE(before.empty()) << "no instance namespace while an instance runs";
  ASSERT_EQ(veths_before.size(), before.size());
  kilnd_->stop(SIGKILL);
  kilnd_ = std::make_unique<kiln::e2e::KilndProcess>(state_);
  start();
  const std::set<std::string> after = netns_files();
  for (const std::string& old : before) EXPECT_EQ(after.count(old), 0u) << "namespace " << old << " left behind";
  const std::set<std::string> veths_after = links_named("kv");
  for (const std::string& old : veths_before) EXPECT_EQ(veths_after.count(old), 0u) << "veth " << old << " left behind";
  auto again = fetch("net", "http://svc.test:8080/hello.txt");
  EXPECT_EQ(again["fetch"], "ok");
  std::printf("network-e2e: kill -9 and restart: nothing left behind, a new instance reaches the service\n");
}

TEST_F(NetworkE2e, ModeNoneHasNoInterface) {
  start();
  json config = kiln::e2e::cgi_function_config(kilnd_->paths(), {{"fetch", kFetchScript}});
  config["timeout_ms"] = 120000;
  config["network"] = {{"mode", "none"}};
  auto deployed = kilnd_->deploy("offline", config);
  ASSERT_TRUE(deployed.ok()) << deployed.error().message;
  auto r = fetch("offline", "http://198.51.100.2:8080/hello.txt");
  EXPECT_EQ(r["ifaces"], "lo ");
  EXPECT_EQ(r["fetch"], "failed");
  EXPECT_EQ(hits("svc.log"), 0);
  EXPECT_TRUE(links_named("kv").empty()) << "an instance without a network got a veth";
}

}  // namespace
