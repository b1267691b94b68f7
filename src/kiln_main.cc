// kiln: the command-line client of kilnd (deploy, invoke, logs [-f], ls, rm, status), with
// readable output by default and the API's JSON with --json.
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "src/client/http_client.h"

namespace {

using nlohmann::json;
using kiln::kilnd::client::Endpoint;
using kiln::kilnd::client::HttpResult;
using kiln::kilnd::client::RequestOptions;

constexpr const char* kUsage =
    "usage: kiln [--endpoint EP] [--token T] [--tenant NAME] [--json] COMMAND ...\n"
    "  EP: host:port or a Unix socket path (default $KILN_ENDPOINT, else 127.0.0.1:8900)\n"
    "  T: the bearer token of a kilnd with tenants (default $KILN_TOKEN)\n"
    "  NAME: (admins) act in that tenant's namespace\n"
    "commands:\n"
    "  deploy NAME --image REF [--memory MIB] [--vcpus N] [--timeout-ms N] [--concurrency N]\n"
    "         [--min N] [--max N] [--queue N] [--idle-timeout-s N] [--env K=V]... [--command ARG]...\n"
    "         [--arg ARG]... [--workdir DIR] [--user U] [--username U --password P]\n"
    "         [--insecure-registry] [--file CONFIG.json] [--no-wait]\n"
    "  invoke NAME [--data TEXT | --data-file FILE]      event invocation (POST /event-invoke)\n"
    "  invoke NAME --web PATH [--method M] [--data ...]  web invocation\n"
    "  invoke NAME --lambda [--data ...]                 the Lambda-compatible path\n"
    "  logs NAME [-f] [--since TIME] [--request-id ID] [--limit N]\n"
    "  ls\n"
    "  rm NAME\n"
    "  status [NAME]\n";

struct Cli {
  Endpoint ep;
  bool json_out = false;
  std::string token;  // Authorization: Bearer
  std::string tenant;  // X-Kiln-Tenant
};

[[noreturn]] void die(const std::string& msg, int code = 1) {
  std::fprintf(stderr, "kiln: %s\n", msg.c_str());
  std::exit(code);
}

HttpResult call(const Cli& cli, const std::string& method, const std::string& target, const std::string& body = "",
                RequestOptions o = {}) {
  if (!cli.token.empty()) o.headers["Authorization"] = "Bearer " + cli.token;
  if (!cli.tenant.empty()) o.headers["X-Kiln-Tenant"] = cli.tenant;
  auto r = kiln::kilnd::client::request(cli.ep, method, target, body, o);
  if (!r.ok()) die(r.error().message);
  return *r;
}

// An API error in one line: "404 not_found: no function named x".
[[noreturn]] void api_error(const HttpResult& r) {
  auto j = json::parse(r.body, nullptr, false);
  std::string msg = r.body;
  if (j.is_object()) {
    if (j.contains("message")) msg = j.value("error", std::string()) + ": " + j["message"].get<std::string>();
    if (j.contains("errorMessage")) msg = j.value("errorType", std::string()) + ": " + j["errorMessage"].get<std::string>();
  }
  while (!msg.empty() && msg.back() == '\n') msg.pop_back();
  die(std::to_string(r.status) + " " + msg);
}

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) die("cannot read " + path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::uint64_t number(const std::string& flag, const std::string& v) {
  char* end = nullptr;
  unsigned long long n = std::strtoull(v.c_str(), &end, 10);
  if (v.empty() || *end) die(flag + " needs a number (got '" + v + "')", 2);
  return n;
}

int deploy(const Cli& cli, std::vector<std::string> args) {
  if (args.empty()) die("deploy needs a NAME\n" + std::string(kUsage), 2);
  std::string name = args[0];
  json body = json::object();
  bool wait = true;
  for (std::size_t i = 1; i < args.size(); ++i) {
    const std::string& a = args[i];
    auto v = [&]() -> std::string {
      if (i + 1 >= args.size()) die(a + " needs a value", 2);
      return args[++i];
    };
    if (a == "--file") {
      auto f = json::parse(read_file(v()), nullptr, false);
      if (!f.is_object()) die("--file must hold a JSON object", 2);
      for (auto it = f.begin(); it != f.end(); ++it) body[it.key()] = it.value();
    } else if (a == "--image") body["image"] = v();
    else if (a == "--memory") body["memory_mib"] = number(a, v());
    else if (a == "--vcpus") body["vcpus"] = number(a, v());
    else if (a == "--timeout-ms") body["timeout_ms"] = number(a, v());
    else if (a == "--concurrency") body["concurrency"] = number(a, v());
    else if (a == "--min") body["min_instances"] = number(a, v());
    else if (a == "--max") body["max_instances"] = number(a, v());
    else if (a == "--queue") body["max_queue"] = number(a, v());
    else if (a == "--idle-timeout-s") body["idle_timeout_s"] = number(a, v());
    else if (a == "--workdir") body["working_dir"] = v();
    else if (a == "--user") body["user"] = v();
    else if (a == "--command") body["command"].push_back(v());
    else if (a == "--arg") body["args"].push_back(v());
    else if (a == "--username") body["registry_credentials"]["username"] = v();
    else if (a == "--password") body["registry_credentials"]["password"] = v();
    else if (a == "--insecure-registry") body["tls_verify"] = false;
    else if (a == "--no-wait") wait = false;
    else if (a == "--env") {
      std::string kv = v();
      auto eq = kv.find('=');
      if (eq == std::string::npos) die("--env needs NAME=VALUE", 2);
      body["env"][kv.substr(0, eq)] = kv.substr(eq + 1);
    } else {
      die("deploy: unknown option " + a, 2);
    }
  }
  auto r = call(cli, "PUT", "/v1/functions/" + name, body.dump());
  if (r.status >= 400) api_error(r);
  json rec = json::parse(r.body, nullptr, false);
  std::string last_stage;
  while (wait) {
    std::string state = rec["image"].value("state", "");
    if (state == "ready" || state == "failed") break;
    std::string stage = rec["image"]["progress"].value("stage", "");
    if (!cli.json_out && stage != last_stage && !stage.empty()) {
      std::fprintf(stderr, "kiln: %s: image %s (%s)\n", name.c_str(), state.c_str(), stage.c_str());
      last_stage = stage;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(200));  // polling a remote state: CLI only
    auto g = call(cli, "GET", "/v1/functions/" + name);
    if (g.status >= 400) api_error(g);
    rec = json::parse(g.body, nullptr, false);
  }
  if (cli.json_out) {
    std::printf("%s\n", rec.dump(2).c_str());
  } else {
    std::string state = rec["image"].value("state", "");
    std::printf("%s: version %llu, image %s", name.c_str(),
                static_cast<unsigned long long>(rec.value("version", 0ull)), state.c_str());
    if (state == "ready") std::printf(" (%s)", rec["image"].value("manifest_digest", "").c_str());
    if (state == "failed") std::printf(": %s", rec["image"].value("reason", "").c_str());
    std::printf("\n");
  }
  return rec["image"].value("state", "") == "failed" ? 1 : 0;
}

int invoke(const Cli& cli, std::vector<std::string> args) {
  if (args.empty()) die("invoke needs a NAME", 2);
  std::string name = args[0];
  std::string data, web, method = "GET";
  bool lambda = false, have_data = false;
  for (std::size_t i = 1; i < args.size(); ++i) {
    const std::string& a = args[i];
    auto v = [&]() -> std::string {
      if (i + 1 >= args.size()) die(a + " needs a value", 2);
      return args[++i];
    };
    if (a == "--data" || a == "-d") { data = v(); have_data = true; }
    else if (a == "--data-file") { std::string f = v(); data = f == "-" ? std::string(std::istreambuf_iterator<char>(std::cin), {}) : read_file(f); have_data = true; }
    else if (a == "--web") web = v();
    else if (a == "--method" || a == "-X") method = v();
    else if (a == "--lambda") lambda = true;
    else die("invoke: unknown option " + a, 2);
  }
  HttpResult r;
  if (!web.empty()) {
    if (web[0] != '/') web = "/" + web;
    if (have_data && method == "GET") method = "POST";
    r = call(cli, method, "/v1/functions/" + name + "/http" + web, data);
  } else if (lambda) {
    r = call(cli, "POST", "/2015-03-31/functions/" + name + "/invocations", data);
  } else {
    r = call(cli, "POST", "/v1/functions/" + name + "/invoke", have_data ? data : "{}");
  }
  std::string rid = r.headers.count("x-kiln-request-id") ? r.headers["x-kiln-request-id"] : r.headers["x-amzn-requestid"];
  bool function_error = r.headers.count("x-amz-function-error") > 0;
  if (cli.json_out) {
    json out = {{"status", r.status}, {"request_id", rid}, {"body", r.body}};
    if (r.headers.count("x-kiln-instance-id")) out["instance_id"] = r.headers["x-kiln-instance-id"];
    if (r.headers.count("x-kiln-cold-start")) out["cold_start"] = r.headers["x-kiln-cold-start"] == "1";
    if (function_error) out["function_error"] = r.headers["x-amz-function-error"];
    std::printf("%s\n", out.dump(2).c_str());
    return r.status >= 400 || function_error ? 1 : 0;
  }
  if (r.status >= 400 && r.headers["content-type"].find("json") != std::string::npos &&
      (r.headers.count("x-amzn-errortype") || r.body.find("\"error\"") != std::string::npos)) {
    api_error(r);
  }
  std::fwrite(r.body.data(), 1, r.body.size(), stdout);
  if (!r.body.empty() && r.body.back() != '\n') std::printf("\n");
  if (!rid.empty()) std::fprintf(stderr, "kiln: request %s: HTTP %d%s\n", rid.c_str(), r.status, function_error ? " (function error)" : "");
  return r.status >= 400 || function_error ? 1 : 0;
}

std::string url_encode(const std::string& s) {
  std::string out;
  for (unsigned char c : s) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') out += static_cast<char>(c);
    else {
      char buf[4];
      std::snprintf(buf, sizeof(buf), "%%%02X", c);
      out += buf;
    }
  }
  return out;
}

int logs(const Cli& cli, std::vector<std::string> args) {
  if (args.empty()) die("logs needs a NAME", 2);
  std::string q = cli.json_out ? "format=json" : "format=text";
  bool follow = false;
  for (std::size_t i = 1; i < args.size(); ++i) {
    const std::string& a = args[i];
    auto v = [&]() -> std::string {
      if (i + 1 >= args.size()) die(a + " needs a value", 2);
      return args[++i];
    };
    if (a == "-f" || a == "--follow") follow = true;
    else if (a == "--since") q += "&since=" + url_encode(v());
    else if (a == "--request-id") q += "&request_id=" + url_encode(v());
    else if (a == "--limit") q += "&limit=" + url_encode(v());
    else die("logs: unknown option " + a, 2);
  }
  if (follow) q += "&follow=1";
  RequestOptions o;
  if (follow) {
    o.on_body = [](std::string_view chunk) {
      std::fwrite(chunk.data(), 1, chunk.size(), stdout);
      std::fflush(stdout);
      return true;
    };
  }
  auto r = call(cli, "GET", "/v1/functions/" + args[0] + "/logs?" + q, "", o);
  if (r.status >= 400) api_error(r);
  std::fwrite(r.body.data(), 1, r.body.size(), stdout);
  return 0;
}

int ls(const Cli& cli) {
  auto r = call(cli, "GET", "/v1/functions");
  if (r.status >= 400) api_error(r);
  auto j = json::parse(r.body, nullptr, false);
  if (cli.json_out) {
    std::printf("%s\n", j.dump(2).c_str());
    return 0;
  }
  std::printf("%-24s %-9s %-8s %-10s %s\n", "NAME", "STATE", "VERSION", "INSTANCES", "IMAGE");
  for (const auto& f : j["functions"]) {
    // An admin sees every tenant's functions: TENANT/NAME.
    std::string name = f.contains("tenant") ? f.value("tenant", "") + "/" + f.value("name", "") : f.value("name", "");
    std::printf("%-24s %-9s %-8llu %-10llu %s\n", name.c_str(), f.value("state", "").c_str(),
                static_cast<unsigned long long>(f.value("version", 0ull)),
                static_cast<unsigned long long>(f.value("instances", 0ull)), f.value("image", "").c_str());
  }
  return 0;
}

int status(const Cli& cli, std::vector<std::string> args) {
  auto r = call(cli, "GET", args.empty() ? "/v1/status" : "/v1/functions/" + args[0]);
  if (r.status >= 400) api_error(r);
  auto j = json::parse(r.body, nullptr, false);
  if (cli.json_out) {
    std::printf("%s\n", j.dump(2).c_str());
    return 0;
  }
  if (args.empty()) {
    std::printf("kilnd %s, up %llu s, state in %s\nfunctions: %llu, instances: %llu, queued: %llu\n",
                j.value("version", "").c_str(), static_cast<unsigned long long>(j.value("uptime_ms", 0ull) / 1000),
                j.value("state_dir", "").c_str(), static_cast<unsigned long long>(j.value("functions", 0ull)),
                static_cast<unsigned long long>(j.value("instances", 0ull)),
                static_cast<unsigned long long>(j.value("queued", 0ull)));
    return 0;
  }
  const auto& c = j["config"];
  const auto& im = j["image"];
  std::printf("%s (version %llu)\n  image: %s\n  state: %s%s\n", c.value("name", "").c_str(),
              static_cast<unsigned long long>(j.value("version", 0ull)), c.value("image", "").c_str(),
              im.value("state", "").c_str(),
              im.value("reason", "").empty() ? "" : (" (" + im.value("reason", "") + ")").c_str());
  if (!im.value("manifest_digest", "").empty()) std::printf("  digest: %s\n", im.value("manifest_digest", "").c_str());
  std::printf("  memory %llu MiB, %llu vCPU, timeout %llu ms, concurrency %llu, instances %llu..%llu\n",
              static_cast<unsigned long long>(c.value("memory_mib", 0ull)), static_cast<unsigned long long>(c.value("vcpus", 0ull)),
              static_cast<unsigned long long>(c.value("timeout_ms", 0ull)), static_cast<unsigned long long>(c.value("concurrency", 0ull)),
              static_cast<unsigned long long>(c.value("min_instances", 0ull)), static_cast<unsigned long long>(c.value("max_instances", 0ull)));
  for (const auto& i : j["instances"]) {
    std::printf("  instance %s: %s, in flight %llu, served %llu\n", i.value("id", "").c_str(), i.value("state", "").c_str(),
                static_cast<unsigned long long>(i.value("in_flight", 0ull)), static_cast<unsigned long long>(i.value("served", 0ull)));
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  Cli cli;
  const char* env_ep = std::getenv("KILN_ENDPOINT");
  std::string ep = env_ep && *env_ep ? env_ep : "127.0.0.1:8900";
  const char* env_token = std::getenv("KILN_TOKEN");
  if (env_token) cli.token = env_token;
  std::vector<std::string> rest;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (rest.empty() && (a == "--endpoint" || a == "-e")) {
      if (i + 1 >= argc) die("--endpoint needs a value", 2);
      ep = argv[++i];
    } else if (rest.empty() && (a == "--token" || a == "--tenant")) {
      if (i + 1 >= argc) die(a + " needs a value", 2);
      (a == "--token" ? cli.token : cli.tenant) = argv[++i];
    } else if (a == "--json") {
      cli.json_out = true;
    } else if (rest.empty() && (a == "--help" || a == "-h")) {
      std::printf("%s", kUsage);
      return 0;
    } else {
      rest.push_back(a);
    }
  }
  auto parsed = Endpoint::parse(ep);
  if (!parsed.ok()) die(parsed.error().message, 2);
  cli.ep = *parsed;
  if (rest.empty()) {
    std::fprintf(stderr, "%s", kUsage);
    return 2;
  }
  std::string cmd = rest[0];
  std::vector<std::string> args(rest.begin() + 1, rest.end());
  if (cmd == "deploy") return deploy(cli, args);
  if (cmd == "invoke") return invoke(cli, args);
  if (cmd == "logs") return logs(cli, args);
  if (cmd == "ls") return ls(cli);
  if (cmd == "rm") {
    if (args.empty()) die("rm needs a NAME", 2);
    auto r = call(cli, "DELETE", "/v1/functions/" + args[0]);
    if (r.status >= 400) api_error(r);
    if (!cli.json_out) std::printf("removed %s\n", args[0].c_str());
    else std::printf("{\"removed\": \"%s\"}\n", args[0].c_str());
    return 0;
  }
  if (cmd == "status") return status(cli, args);
  std::fprintf(stderr, "kiln: unknown command %s\n%s", cmd.c_str(), kUsage);
  return 2;
}
