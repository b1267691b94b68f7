// The `kiln` commands: deploy (then poll the image build), invoke (event, web, Lambda), logs
// [-f], ls, rm, status; readable output by default, the API's JSON with --json.
#include "src/cli/kiln_commands.h"

#include <chrono>
#include <cstdio>
#include <iostream>
#include <iterator>
#include <optional>
#include <string>
#include <thread>

#include "common/percent_encode.h"
#include "src/cli/kiln_output.h"
#include "src/cli/kilnd_options.h"
#include "src/client/http_client.h"
#include "src/doctor/checks.h"

namespace kiln::kilnd::cli {
namespace {

using nlohmann::json;
using client::Endpoint;
using client::HttpResult;
using client::RequestOptions;
using kiln::percent_encode;

int fail(const std::string& message) {
  std::fprintf(stderr, "kiln: %s\n", message.c_str());
  return 1;
}

class Api {
 public:
  Api(Endpoint ep, const KilnGlobals& g) : ep_(std::move(ep)), globals_(g) {}

  Result<HttpResult> call(const std::string& method, const std::string& target, const std::string& body = "",
                          RequestOptions o = {}) const {
    if (!globals_.token.empty()) o.headers["Authorization"] = "Bearer " + globals_.token;
    if (!globals_.tenant.empty()) o.headers["X-Kiln-Tenant"] = globals_.tenant;
    return client::request(ep_, method, target, body, o);
  }

 private:
  Endpoint ep_;
  const KilnGlobals& globals_;
};

// "/v1/functions/NAME": the name is one path segment whatever it holds ("a/b" -> "a%2Fb").
std::string function_path(const std::string& name) { return "/v1/functions/" + percent_encode(name); }

int deploy(const Api& api, const KilnGlobals& g, const DeployArgs& d) {
  auto put = api.call("PUT", function_path(d.name), d.body.dump());
  if (!put.ok()) return fail(put.error().message);
  if (put->status >= 400) return fail(api_error_line(*put));
  json rec = json::parse(put->body, nullptr, false);
  std::string last_stage;
  while (d.wait) {
    std::string state = rec["image"].value("state", "");
    if (state == "ready" || state == "failed") break;
    std::string stage = rec["image"]["progress"].value("stage", "");
    if (!g.json && stage != last_stage && !stage.empty()) {
      std::fprintf(stderr, "kiln: %s: image %s (%s)\n", d.name.c_str(), state.c_str(), stage.c_str());
      last_stage = stage;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(200));  // polling a remote state: CLI only
    auto got = api.call("GET", function_path(d.name));
    if (!got.ok()) return fail(got.error().message);
    if (got->status >= 400) return fail(api_error_line(*got));
    rec = json::parse(got->body, nullptr, false);
  }
  if (g.json) {
    std::printf("%s\n", rec.dump(2).c_str());
  } else {
    std::string state = rec["image"].value("state", "");
    std::printf("%s: version %llu, image %s", d.name.c_str(), static_cast<unsigned long long>(rec.value("version", 0ull)),
                state.c_str());
    if (state == "ready") std::printf(" (%s)", rec["image"].value("manifest_digest", "").c_str());
    if (state == "failed") std::printf(": %s", with_kiln_flag_hints(rec["image"].value("reason", "")).c_str());
    std::printf("\n");
  }
  return rec["image"].value("state", "") == "failed" ? 1 : 0;
}

int invoke(const Api& api, const KilnGlobals& g, const InvokeArgs& v) {
  std::string data;
  if (v.data) data = *v.data;
  if (v.data_file) {
    if (*v.data_file == "-") {
      data.assign(std::istreambuf_iterator<char>(std::cin), {});
    } else {
      auto f = read_whole_file(*v.data_file);
      if (!f.ok()) return fail(f.error().message);
      data = *f;
    }
  }
  const bool have_data = v.data || v.data_file;
  Result<HttpResult> res = make_error("");
  if (!v.web.empty()) {
    std::string web = v.web[0] == '/' ? v.web : "/" + v.web;
    std::string method = have_data && v.method == "GET" ? "POST" : v.method;
    res = api.call(method, function_path(v.name) + "/http" + web, data);
  } else if (v.lambda) {
    res = api.call("POST", "/2015-03-31/functions/" + percent_encode(v.name) + "/invocations", data);
  } else {
    res = api.call("POST", function_path(v.name) + "/invoke", have_data ? data : "{}");
  }
  if (!res.ok()) return fail(res.error().message);
  HttpResult& r = *res;
  std::string rid = r.headers.count("x-kiln-request-id") ? r.headers["x-kiln-request-id"] : r.headers["x-amzn-requestid"];
  bool function_error = r.headers.count("x-amz-function-error") > 0;
  if (g.json) {
    json out = {{"status", r.status}, {"request_id", rid}, {"body", r.body}};
    if (r.headers.count("x-kiln-instance-id")) out["instance_id"] = r.headers["x-kiln-instance-id"];
    if (r.headers.count("x-kiln-cold-start")) out["cold_start"] = r.headers["x-kiln-cold-start"] == "1";
    if (function_error) out["function_error"] = r.headers["x-amz-function-error"];
    std::printf("%s\n", out.dump(2).c_str());
    return r.status >= 400 || function_error ? 1 : 0;
  }
  if (r.status >= 400 && r.headers["content-type"].find("json") != std::string::npos &&
      (r.headers.count("x-amzn-errortype") || r.body.find("\"error\"") != std::string::npos)) {
    return fail(api_error_line(r));
  }
  std::fwrite(r.body.data(), 1, r.body.size(), stdout);
  if (!r.body.empty() && r.body.back() != '\n') std::printf("\n");
  if (!rid.empty()) {
    std::fprintf(stderr, "kiln: request %s: HTTP %d%s\n", rid.c_str(), r.status, function_error ? " (function error)" : "");
  }
  return r.status >= 400 || function_error ? 1 : 0;
}

int logs(const Api& api, const KilnGlobals& g, const LogsArgs& l) {
  std::string q = g.json ? "format=json" : "format=text";
  if (!l.since.empty()) q += "&since=" + percent_encode(l.since);
  if (!l.request_id.empty()) q += "&request_id=" + percent_encode(l.request_id);
  if (l.limit) q += "&limit=" + std::to_string(*l.limit);
  if (l.follow) q += "&follow=1";
  RequestOptions o;
  if (l.follow) {
    o.on_body = [](std::string_view chunk) {
      std::fwrite(chunk.data(), 1, chunk.size(), stdout);
      std::fflush(stdout);
      return true;
    };
  }
  auto r = api.call("GET", function_path(l.name) + "/logs?" + q, "", o);
  if (!r.ok()) return fail(r.error().message);
  if (r->status >= 400) return fail(api_error_line(*r));
  std::fwrite(r->body.data(), 1, r->body.size(), stdout);
  // kilnd answers only the newest `limit` lines: say so rather than let them pass for all.
  if (!l.follow) {
    if (auto notice = logs_limit_notice(r->body, l.limit.value_or(kDefaultLogLimit))) {
      std::fflush(stdout);
      std::fprintf(stderr, "%s\n", notice->c_str());
    }
  }
  return 0;
}

// GET `target` as JSON; on a transport or API error, says why and returns nothing.
std::optional<json> get_json(const Api& api, const std::string& target) {
  auto r = api.call("GET", target);
  if (!r.ok()) {
    fail(r.error().message);
    return std::nullopt;
  }
  if (r->status >= 400) {
    fail(api_error_line(*r));
    return std::nullopt;
  }
  return json::parse(r->body, nullptr, false);
}

int ls(const Api& api, const KilnGlobals& g) {
  auto got = get_json(api, "/v1/functions");
  if (!got) return 1;
  json j = std::move(*got);
  if (g.json) {
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

int rm(const Api& api, const KilnGlobals& g, const std::string& name) {
  auto r = api.call("DELETE", function_path(name));
  if (!r.ok()) return fail(r.error().message);
  if (r->status >= 400) return fail(api_error_line(*r));
  if (!g.json) std::printf("removed %s\n", name.c_str());
  else std::printf("{\"removed\": %s}\n", json(name).dump().c_str());
  return 0;
}

int status(const Api& api, const KilnGlobals& g, const std::string& name) {
  auto got = get_json(api, name.empty() ? "/v1/status" : function_path(name));
  if (!got) return 1;
  json j = std::move(*got);
  if (g.json) {
    std::printf("%s\n", j.dump(2).c_str());
    return 0;
  }
  if (name.empty()) {
    std::printf("kilnd %s, up %llu s, state in %s\nfunctions: %llu, instances: %llu, queued: %llu\n",
                j.value("version", "").c_str(), static_cast<unsigned long long>(j.value("uptime_ms", 0ull) / 1000),
                j.value("state_dir", "").c_str(), static_cast<unsigned long long>(j.value("functions", 0ull)),
                static_cast<unsigned long long>(j.value("instances", 0ull)),
                static_cast<unsigned long long>(j.value("queued", 0ull)));
    return 0;
  }
  const auto& c = j["config"];
  const auto& im = j["image"];
  const std::string reason = with_kiln_flag_hints(im.value("reason", ""));
  std::printf("%s (version %llu)\n  image: %s\n  state: %s%s\n", c.value("name", "").c_str(),
              static_cast<unsigned long long>(j.value("version", 0ull)), c.value("image", "").c_str(),
              im.value("state", "").c_str(), reason.empty() ? "" : (" (" + reason + ")").c_str());
  if (!im.value("manifest_digest", "").empty()) std::printf("  digest: %s\n", im.value("manifest_digest", "").c_str());
  std::printf("  memory %llu MiB, %llu vCPU, timeout %llu ms, concurrency %llu, instances %llu..%llu\n",
              static_cast<unsigned long long>(c.value("memory_mib", 0ull)), static_cast<unsigned long long>(c.value("vcpus", 0ull)),
              static_cast<unsigned long long>(c.value("timeout_ms", 0ull)), static_cast<unsigned long long>(c.value("concurrency", 0ull)),
              static_cast<unsigned long long>(c.value("min_instances", 0ull)), static_cast<unsigned long long>(c.value("max_instances", 0ull)));
  if (auto network = network_summary(c)) std::printf("  %s\n", network->c_str());
  for (const auto& i : j["instances"]) {
    std::printf("  instance %s: %s, in flight %llu, served %llu\n", i.value("id", "").c_str(), i.value("state", "").c_str(),
                static_cast<unsigned long long>(i.value("in_flight", 0ull)), static_cast<unsigned long long>(i.value("served", 0ull)));
  }
  return 0;
}

// kiln doctor: kilnd's config file (checked as kilnd checks it at start, and where the state dir
// and kiln-vmm come from), then the host checks of src/doctor.
int doctor(const KilnGlobals& g, const DoctorArgs& d) {
  std::vector<std::string> kilnd_args;
  if (!d.config.empty()) kilnd_args = {"--config", d.config};
  const KilndDefaults defaults = kilnd_defaults();
  auto kilnd = parse_kilnd_args(kilnd_args, defaults);
  doctor::CheckResult config{"config", doctor::Verdict::kOk, "", ""};
  std::string state_dir = defaults.state_dir, vmm;
  if (!kilnd.ok()) {
    config.verdict = doctor::Verdict::kFail;
    config.finding = kilnd.error().message;
    config.fix = "correct the file (keys and types: packaging/kilnd.example.json, src/README.md)";
  } else {
    config.finding = kilnd->config_file.empty() ? "no config file (" + std::string(kDefaultConfigFile) +
                                                      " absent): kilnd runs on its flags and defaults"
                                                : kilnd->config_file + " is valid";
    state_dir = kilnd->state_dir;
    vmm = kilnd->vmm_path;
  }
  if (!d.state_dir.empty()) state_dir = d.state_dir;
  if (!d.vmm.empty()) vmm = d.vmm;
  const doctor::SystemHost host(vmm);
  std::vector<doctor::CheckResult> results = doctor::run_checks(host, state_dir);
  results.insert(results.begin(), config);
  if (g.json) {
    json out = json::array();
    for (const auto& r : results) {
      const char* verdict = r.verdict == doctor::Verdict::kOk     ? "ok"
                            : r.verdict == doctor::Verdict::kWarn ? "warn"
                                                                  : "fail";
      out.push_back({{"check", r.check}, {"verdict", verdict}, {"finding", r.finding}, {"fix", r.fix}});
    }
    std::printf("%s\n", out.dump(2).c_str());
  } else {
    std::fputs(doctor::format_report(results).c_str(), stdout);
  }
  return doctor::exit_status(results);
}

}  // namespace

int run_kiln(const KilnCommand& c) {
  if (c.action == KilnAction::kHelp) {
    std::fputs(c.help.c_str(), stdout);
    return 0;
  }
  if (c.action == KilnAction::kDoctor) return doctor(c.globals, c.doctor);
  auto ep = Endpoint::parse(c.globals.endpoint);
  if (!ep.ok()) {
    std::fprintf(stderr, "kiln: %s\n", ep.error().message.c_str());
    return 2;
  }
  const Api api(*ep, c.globals);
  switch (c.action) {
    case KilnAction::kDeploy: return deploy(api, c.globals, c.deploy);
    case KilnAction::kInvoke: return invoke(api, c.globals, c.invoke);
    case KilnAction::kLogs: return logs(api, c.globals, c.logs);
    case KilnAction::kLs: return ls(api, c.globals);
    case KilnAction::kRm: return rm(api, c.globals, c.name);
    case KilnAction::kStatus: return status(api, c.globals, c.name);
    case KilnAction::kHelp:
    case KilnAction::kDoctor: break;
  }
  return 0;
}

}  // namespace kiln::kilnd::cli
