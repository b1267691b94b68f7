// Lambda's view of a kiln function (AWS Lambda API 2015-03-31): the request bodies of
// CreateFunction, UpdateFunctionCode and UpdateFunctionConfiguration read into kiln's deploy
// fields (then validated by kiln's own deploy validation), and a function record rendered as
// Lambda's FunctionConfiguration / GetFunction shapes. Pure: no I/O, no clock.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "common/json/field_reader.h"
#include "src/registry/function_config.h"

namespace kiln::kilnd::functions {

// Lambda's limits (CreateFunction): both inside kiln's own (memory_mib 64-32768,
// timeout_ms 1-900000), so a Lambda request that passes them is checked again by kiln's rules.
inline constexpr std::uint64_t kLambdaMinMemoryMb = 128;
inline constexpr std::uint64_t kLambdaMaxMemoryMb = 10240;
inline constexpr std::uint64_t kLambdaMinTimeoutS = 1;
inline constexpr std::uint64_t kLambdaMaxTimeoutS = 900;
inline constexpr std::size_t kLambdaMaxEnvironmentBytes = 4096;  // all variables' names and values
inline constexpr std::size_t kLambdaDefaultPageSize = 50;  // ListFunctions: also its largest page
inline constexpr std::uint64_t kLambdaMaxItems = 10000;
// The region in every ARN kilnd hands out (kilnd is one region of its own).
inline constexpr const char* kLambdaRegion = "local";
inline constexpr const char* kLambdaLatest = "$LATEST";

// The architecture this host runs guests of, in Lambda's spelling ("x86_64" or "arm64").
const char* lambda_host_architecture();

// The 12-digit account of a kiln namespace in ARNs: "000000000000" for the admin namespace,
// a stable digest of the tenant's name otherwise (the same on every kilnd and restart).
std::string lambda_account(std::string_view tenant);
std::string lambda_function_arn(std::string_view tenant, std::string_view name);

// The function a FunctionName path parameter (or body member) names in `tenant`'s namespace:
// NAME, ACCOUNT:function:NAME or arn:aws:lambda:REGION:ACCOUNT:function:NAME, each with an
// optional ":QUALIFIER". Errors (InvalidParameterValueException): a malformed name.
struct LambdaFunctionRef {
  std::string name;
  bool elsewhere = false;  // names another account or region: answered as a missing function
  std::string qualifier;  // "" or as given; only $LATEST exists in kiln
};
kiln::json::FieldResult<LambdaFunctionRef> parse_lambda_function_ref(std::string_view text,
                                                                     std::string_view tenant);

// Request bodies, read with Lambda's names and limits into kiln's deploy fields ("image",
// "command", "args", "working_dir", "env", "memory_mib", "timeout_ms", "tls_verify"): the
// changes to make. Every error names the Lambda parameter ("MemorySize: must be an integer from
// 128 to 10240"); a Lambda parameter kiln does not serve is refused by name, never ignored.
// Role is accepted and not kept (kiln has no IAM); only PackageType Image is served.
struct LambdaCreate {
  std::string name;
  nlohmann::json fields;  // kiln's deploy body
};
kiln::json::FieldResult<LambdaCreate> read_lambda_create(std::string_view body, std::string_view tenant);
struct LambdaUpdate {
  nlohmann::json fields;  // changes to kiln's deploy body; a null member removes that field
  bool dry_run = false;  // UpdateFunctionCode DryRun: validate only
};
kiln::json::FieldResult<LambdaUpdate> read_lambda_update_code(std::string_view body,
                                                              const registry::FunctionConfig& current);
kiln::json::FieldResult<LambdaUpdate> read_lambda_update_configuration(std::string_view body);

// `current`'s config (nullptr: a new function `name`) with `changes` applied, through kiln's
// deploy validation (registry::parse_function_config); its errors name Lambda's parameters.
kiln::json::FieldResult<registry::FunctionConfig> merge_lambda_changes(std::string_view name,
                                                                       const registry::FunctionRecord* current,
                                                                       const nlohmann::json& changes);

// Lambda's view of a kiln function record.
nlohmann::json lambda_function_configuration(const registry::FunctionRecord& r);
// GetFunction: {Configuration, Code {RepositoryType, ImageUri, ResolvedImageUri}}.
nlohmann::json lambda_get_function(const registry::FunctionRecord& r);
// "2026-12-07T14:34:25.123+0000" (LastModified's format).
std::string lambda_timestamp(std::uint64_t wall_ms);

// "2026-12-07T20:41:00Z" (an EventBridge event's time; whole seconds, UTC).
std::string lambda_event_time(std::int64_t unix_s);
// The EventBridge rule behind schedule `index` of function `name`:
// arn:aws:events:REGION:ACCOUNT:rule/NAME-schedule-INDEX.
std::string lambda_schedule_rule_arn(std::string_view tenant, std::string_view name, std::size_t index);
// What a timer trigger sends (EventBridge's Scheduled Event, as Lambda receives it), JSON text:
// {"version":"0","id":ID,"detail-type":"Scheduled Event","source":"aws.events","account",
// "time" (the scheduled time, "YYYY-MM-DDTHH:MM:SSZ"),"region","resources":[the rule's ARN],
// "detail":{}}.
std::string lambda_scheduled_event(std::string_view tenant, std::string_view name, std::size_t index,
                                   std::string_view id, std::int64_t scheduled_s);

}  // namespace kiln::kilnd::functions
