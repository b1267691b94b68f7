// Lambda's shapes over kiln's functions, pure: CreateFunction / UpdateFunctionCode /
// UpdateFunctionConfiguration bodies into kiln's config (Lambda's limits, then kiln's, each
// error naming the Lambda parameter), FunctionName forms and ARNs, and a record rendered as
// FunctionConfiguration / GetFunction (State and LastUpdateStatus following the image build).
#include <gtest/gtest.h>

#include <string>

#include <nlohmann/json.hpp>

#include "src/functions/lambda_shapes.h"

namespace kiln::kilnd::functions {
namespace {

using nlohmann::json;

registry::FunctionConfig create(const json& body, std::string_view tenant = "") {
  auto in = read_lambda_create(body.dump(), tenant);
  EXPECT_TRUE(in.ok()) << (in.ok() ? "" : in.error().message);
  if (!in.ok()) return {};
  auto config = merge_lambda_changes(in->name, nullptr, in->fields);
  EXPECT_TRUE(config.ok()) << (config.ok() ? "" : config.error().message);
  return config.ok() ? *config : registry::FunctionConfig{};
}

// The parameter and message of a refused CreateFunction.
std::pair<std::string, std::string> create_error(const json& body) {
  auto in = read_lambda_create(body.dump(), "");
  if (!in.ok()) return {in.error().path, in.error().message};
  auto config = merge_lambda_changes(in->name, nullptr, in->fields);
  if (!config.ok()) return {config.error().path, config.error().message};
  return {"", "accepted"};
}

json minimal() {
  return {{"FunctionName", "f"},
          {"PackageType", "Image"},
          {"Code", {{"ImageUri", "registry.example.com/team/fn:v1"}}},
          {"Role", "arn:aws:iam::000000000000:role/x"}};
}

TEST(LambdaShapes, CreateMapsOntoKilnConfig) {
  json body = minimal();
  body["ImageConfig"] = {{"EntryPoint", {"/lambda-entrypoint.sh"}}, {"Command", {"app.handler"}},
                         {"WorkingDirectory", "/var/task"}};
  body["Environment"] = {{"Variables", {{"STAGE", "test"}, {"EMPTY", ""}}}};
  body["MemorySize"] = 512;
  body["Timeout"] = 30;
  body["Architectures"] = {lambda_host_architecture()};
  registry::FunctionConfig c = create(body);
  EXPECT_EQ(c.name, "f");
  EXPECT_EQ(c.image, "registry.example.com/team/fn:v1");
  ASSERT_TRUE(c.command && c.args);
  EXPECT_EQ(*c.command, std::vector<std::string>{"/lambda-entrypoint.sh"});
  EXPECT_EQ(*c.args, std::vector<std::string>{"app.handler"});
  EXPECT_EQ(c.working_dir, "/var/task");
  EXPECT_EQ(c.env, (std::map<std::string, std::string>{{"STAGE", "test"}, {"EMPTY", ""}}));
  EXPECT_EQ(c.memory_mib, 512u);
  EXPECT_EQ(c.timeout_ms, 30000u);
  EXPECT_TRUE(c.tls_verify);  // a remote registry keeps TLS verification

  // Lambda's defaults are kiln's: 128 MB, 3 s; no overrides of the image's command.
  registry::FunctionConfig d = create(minimal());
  EXPECT_EQ(d.memory_mib, 128u);
  EXPECT_EQ(d.timeout_ms, 3000u);
  EXPECT_FALSE(d.command || d.args);
  EXPECT_TRUE(d.env.empty());

  // A loopback registry is insecure by default, as Docker treats 127.0.0.0/8.
  for (const char* uri : {"127.0.0.1:5000/fn:latest", "localhost:5000/fn", "[::1]:5000/fn:v1"}) {
    json b = minimal();
    b["Code"]["ImageUri"] = uri;
    EXPECT_FALSE(create(b).tls_verify) << uri;
  }
  // An empty EntryPoint, like none, keeps the image's.
  json empty = minimal();
  empty["ImageConfig"] = {{"EntryPoint", json::array()}};
  EXPECT_FALSE(create(empty).command);
}

TEST(LambdaShapes, CreateErrorsNameTheLambdaParameter) {
  struct Case {
    const char* what;
    json body;
    const char* path;
    const char* message_part;
  };
  auto with = [](const char* key, json value) {
    json b = minimal();
    b[key] = std::move(value);
    return b;
  };
  json no_type = minimal();
  no_type.erase("PackageType");
  json no_code = minimal();
  no_code.erase("Code");
  json zip_code = minimal();
  zip_code["Code"] = {{"ZipFile", "UEsDBA=="}};
  json zip_function = {{"FunctionName", "z"}, {"PackageType", "Zip"}, {"Runtime", "python3.12"},
                       {"Handler", "app.handler"}, {"Code", {{"ZipFile", "UEsDBA=="}}}};
  json bad_uri = minimal();
  bad_uri["Code"]["ImageUri"] = "Not A Reference";
  const std::string other_arch = std::string(lambda_host_architecture()) == "arm64" ? "x86_64" : "arm64";
  std::string big(4100, 'x');
  for (const Case& c : std::vector<Case>{
           {"memory low", with("MemorySize", 64), "MemorySize", "from 128 to 10240"},
           {"memory high", with("MemorySize", 10241), "MemorySize", "from 128 to 10240"},
           {"memory type", with("MemorySize", "1024"), "MemorySize", "integer"},
           {"timeout zero", with("Timeout", 0), "Timeout", "from 1 to 900"},
           {"timeout high", with("Timeout", 901), "Timeout", "from 1 to 900"},
           {"zip", with("PackageType", "Zip"), "PackageType", "must be Image (got Zip)"},
           {"zip function", zip_function, "PackageType", "must be Image (got Zip)"},  // not "Runtime: unknown"
           {"no package type", no_type, "PackageType", "must be Image"},
           {"no code", no_code, "Code", "is required"},
           {"zip code", zip_code, "Code.ZipFile", "unknown field"},
           {"bad uri", bad_uri, "Code.ImageUri", ""},
           {"runtime", with("Runtime", "python3.12"), "Runtime", "unknown field"},
           {"layers", with("Layers", json::array()), "Layers", "unknown field"},
           {"architecture", with("Architectures", {other_arch}), "Architectures", "runs"},
           {"two architectures", with("Architectures", {"x86_64", "arm64"}), "Architectures", ""},
           {"publish", with("Publish", true), "Publish", "$LATEST"},
           {"name", with("FunctionName", "bad name"), "FunctionName", "[A-Za-z0-9_-]"},
           {"qualified name", with("FunctionName", "f:3"), "FunctionName", "qualifier"},
           {"env size", with("Environment", {{"Variables", {{"BIG", big}}}}), "Environment.Variables", "4 KB"},
           {"env value type", with("Environment", {{"Variables", {{"N", 1}}}}), "Environment.Variables.N", "string"},
           // kiln's own rules, renamed to Lambda's parameters
           {"env name", with("Environment", {{"Variables", {{"1BAD", "x"}}}}), "Environment.Variables.1BAD",
            "not a valid variable name"},
           {"working dir", with("ImageConfig", {{"WorkingDirectory", "relative"}}), "ImageConfig.WorkingDirectory",
            "absolute"},
       }) {
    auto [path, message] = create_error(c.body);
    EXPECT_EQ(path, c.path) << c.what << ": " << message;
    EXPECT_NE(message.find(c.message_part), std::string::npos) << c.what << ": " << message;
    EXPECT_EQ(message.rfind(path + ": ", 0), 0u) << c.what << ": the message names the parameter: " << message;
  }
  auto in = read_lambda_create("{not json", "");
  ASSERT_FALSE(in.ok());
  EXPECT_EQ(in.error().path, "body");
}

TEST(LambdaShapes, FunctionNameForms) {
  const std::string admin_arn = lambda_function_arn("", "f");
  EXPECT_EQ(admin_arn, "arn:aws:lambda:local:000000000000:function:f");
  const std::string acme = lambda_account("acme");
  EXPECT_EQ(acme.size(), 12u);
  EXPECT_EQ(acme.find_first_not_of("0123456789"), std::string::npos);
  EXPECT_EQ(acme, lambda_account("acme"));  // stable
  EXPECT_NE(acme, lambda_account("beta"));
  EXPECT_NE(acme, lambda_account(""));

  struct Case {
    std::string text;
    std::string tenant;
    std::string name;
    bool elsewhere;
    std::string qualifier;
  };
  for (const Case& c : std::vector<Case>{
           {"f", "", "f", false, ""},
           {"f:$LATEST", "", "f", false, "$LATEST"},
           {admin_arn, "", "f", false, ""},
           {admin_arn + ":$LATEST", "", "f", false, "$LATEST"},
           {"000000000000:function:f", "", "f", false, ""},
           {lambda_function_arn("acme", "g"), "acme", "g", false, ""},
           {lambda_function_arn("acme", "g"), "beta", "g", true, ""},  // another tenant's account
           {"arn:aws:lambda:us-east-1:000000000000:function:f", "", "f", true, ""},  // another region
       }) {
    auto ref = parse_lambda_function_ref(c.text, c.tenant);
    ASSERT_TRUE(ref.ok()) << c.text << ": " << ref.error().message;
    EXPECT_EQ(ref->name, c.name) << c.text;
    EXPECT_EQ(ref->elsewhere, c.elsewhere) << c.text;
    EXPECT_EQ(ref->qualifier, c.qualifier) << c.text;
  }
  for (const char* bad : {"", "a:b:c:d", "../x", "arn:aws:lambda:local:000000000000:function:a/b", "x y"}) {
    auto ref = parse_lambda_function_ref(bad, "");
    ASSERT_FALSE(ref.ok()) << bad;
    EXPECT_EQ(ref.error().path, "FunctionName") << bad;
  }
  EXPECT_FALSE(parse_lambda_function_ref(std::string(171, 'a'), "").ok());
}

registry::FunctionRecord record_of(registry::FunctionConfig c) {
  registry::FunctionRecord r;
  r.tenant = "acme";
  r.config = std::move(c);
  r.version = 3;
  r.updated_ms = 1765118065123;  // 2025-12-07T14:34:25.123Z
  return r;
}

TEST(LambdaShapes, UpdatesKeepWhatLambdaCannotName) {
  json body = minimal();
  body["ImageConfig"] = {{"EntryPoint", {"/bin/app"}}, {"Command", {"serve"}}};
  body["Environment"] = {{"Variables", {{"A", "1"}}}};
  registry::FunctionConfig c = create(body);
  c.vcpus = 2;
  c.concurrency = 4;
  c.max_instances = 3;
  c.credentials = {"user", "secret"};
  const registry::FunctionRecord current = record_of(c);

  auto in = read_lambda_update_configuration(
      json{{"MemorySize", 1024}, {"Timeout", 60}, {"Environment", {{"Variables", {{"B", "2"}}}}}}.dump());
  ASSERT_TRUE(in.ok()) << in.error().message;
  auto u = merge_lambda_changes("f", &current, in->fields);
  ASSERT_TRUE(u.ok()) << u.error().message;
  EXPECT_EQ(u->memory_mib, 1024u);
  EXPECT_EQ(u->timeout_ms, 60000u);
  EXPECT_EQ(u->env, (std::map<std::string, std::string>{{"B", "2"}}));  // replaced, as Lambda does
  EXPECT_EQ(*u->command, std::vector<std::string>{"/bin/app"});  // not named: kept
  EXPECT_EQ(u->vcpus, 2u);
  EXPECT_EQ(u->concurrency, 4u);
  EXPECT_EQ(u->max_instances, 3u);
  EXPECT_EQ(u->credentials.password, "secret");
  EXPECT_EQ(u->image, c.image);

  // ImageConfig replaces all three overrides: what it leaves out goes back to the image's.
  auto reset = read_lambda_update_configuration(R"({"ImageConfig": {"Command": ["other"]}})");
  ASSERT_TRUE(reset.ok());
  auto r = merge_lambda_changes("f", &current, reset->fields);
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_FALSE(r->command);
  EXPECT_EQ(*r->args, std::vector<std::string>{"other"});

  for (const char* bad : {R"({"MemorySize": 100000})", R"({"Timeout": 0})", R"({"Handler": "x"})",
                          R"({"Environment": {"Vars": {}}})"}) {
    EXPECT_FALSE(read_lambda_update_configuration(bad).ok()) << bad;
  }
  auto named = read_lambda_update_configuration(R"({"MemorySize": 64})");
  ASSERT_FALSE(named.ok());
  EXPECT_EQ(named.error().path, "MemorySize");
}

TEST(LambdaShapes, UpdateCodeSwitchesTlsWithTheRegistry) {
  registry::FunctionConfig remote = create(minimal());
  auto to_local = read_lambda_update_code(R"({"ImageUri": "127.0.0.1:5000/fn:v2"})", remote);
  ASSERT_TRUE(to_local.ok()) << to_local.error().message;
  EXPECT_EQ(to_local->fields["image"], "127.0.0.1:5000/fn:v2");
  EXPECT_EQ(to_local->fields["tls_verify"], false);
  EXPECT_FALSE(to_local->dry_run);

  registry::FunctionConfig local = remote;
  local.image = "127.0.0.1:5000/fn:v2";
  local.tls_verify = false;
  auto back = read_lambda_update_code(R"({"ImageUri": "registry.example.com/fn:v3", "DryRun": true})", local);
  ASSERT_TRUE(back.ok());
  EXPECT_EQ(back->fields["tls_verify"], true);  // leaving loopback: verified again
  EXPECT_TRUE(back->dry_run);

  registry::FunctionConfig insecure = remote;  // set through kiln's own API: kept
  insecure.tls_verify = false;
  auto kept = read_lambda_update_code(R"({"ImageUri": "registry.example.com/fn:v4"})", insecure);
  ASSERT_TRUE(kept.ok());
  EXPECT_FALSE(kept->fields.contains("tls_verify"));

  for (const auto& [body, path] : std::vector<std::pair<std::string, std::string>>{
           {"{}", "ImageUri"}, {R"({"ZipFile": "UEsDBA=="})", "ZipFile"}, {R"({"ImageUri": "Bad Ref"})", "ImageUri"},
           {R"({"ImageUri": "a/b", "Publish": true})", "Publish"}}) {
    auto r = read_lambda_update_code(body, remote);
    ASSERT_FALSE(r.ok()) << body;
    EXPECT_EQ(r.error().path, path) << body;
  }
}

TEST(LambdaShapes, FunctionConfigurationFollowsTheImageBuild) {
  json body = minimal();
  body["ImageConfig"] = {{"EntryPoint", {"/bin/app"}}, {"WorkingDirectory", "/srv"}};
  body["Environment"] = {{"Variables", {{"A", "1"}}}};
  body["MemorySize"] = 256;
  registry::FunctionConfig c = create(body);
  c.timeout_ms = 1500;  // kiln counts milliseconds; Lambda shows whole seconds, rounded up
  registry::FunctionRecord r = record_of(c);

  r.image.state = registry::ImageState::kBuilding;
  r.image.stage = "fetch";
  json j = lambda_function_configuration(r);
  EXPECT_EQ(j["FunctionName"], "f");
  EXPECT_EQ(j["FunctionArn"], "arn:aws:lambda:local:" + lambda_account("acme") + ":function:f");
  EXPECT_EQ(j["PackageType"], "Image");
  EXPECT_EQ(j["MemorySize"], 256);
  EXPECT_EQ(j["Timeout"], 2);
  EXPECT_EQ(j["Version"], "$LATEST");
  EXPECT_EQ(j["LastModified"], "2025-12-07T14:34:25.123+0000");
  EXPECT_EQ(j["Environment"], json({{"Variables", {{"A", "1"}}}}));
  EXPECT_EQ(j["ImageConfigResponse"],
            json({{"ImageConfig", {{"EntryPoint", {"/bin/app"}}, {"WorkingDirectory", "/srv"}}}}));
  EXPECT_EQ(j["Architectures"], json({lambda_host_architecture()}));
  EXPECT_EQ(j["State"], "Pending");
  EXPECT_EQ(j["StateReasonCode"], "Creating");
  EXPECT_EQ(j["LastUpdateStatus"], "InProgress");
  EXPECT_FALSE(j.contains("CodeSha256"));  // not known before the image is resolved

  r.image.state = registry::ImageState::kReady;
  r.image.manifest_digest = "sha256:" + std::string(64, 'b');
  j = lambda_function_configuration(r);
  EXPECT_EQ(j["State"], "Active");
  EXPECT_EQ(j["LastUpdateStatus"], "Successful");
  EXPECT_FALSE(j.contains("StateReason"));
  EXPECT_EQ(j["CodeSha256"], std::string(64, 'b'));
  json g = lambda_get_function(r);
  EXPECT_EQ(g["Configuration"], j);
  EXPECT_EQ(g["Code"]["ImageUri"], "registry.example.com/team/fn:v1");
  EXPECT_EQ(g["Code"]["ResolvedImageUri"], "registry.example.com/team/fn@sha256:" + std::string(64, 'b'));
  EXPECT_EQ(g["Code"]["RepositoryType"], "OCI");

  r.image.state = registry::ImageState::kFailed;
  r.image.reason = "manifest unknown";
  j = lambda_function_configuration(r);
  EXPECT_EQ(j["State"], "Failed");
  EXPECT_EQ(j["StateReasonCode"], "InvalidImage");
  EXPECT_EQ(j["StateReason"], "image preparation failed: manifest unknown");
  EXPECT_EQ(j["LastUpdateStatus"], "Failed");
  EXPECT_EQ(j["LastUpdateStatusReason"], j["StateReason"]);

  registry::FunctionConfig bare = create(minimal());  // no overrides, no variables: omitted as Lambda does
  json b = lambda_function_configuration(record_of(bare));
  EXPECT_FALSE(b.contains("Environment"));
  EXPECT_FALSE(b.contains("ImageConfigResponse"));
  EXPECT_EQ(lambda_timestamp(0), "1970-01-01T00:00:00.000+0000");
}

}  // namespace
}  // namespace kiln::kilnd::functions
