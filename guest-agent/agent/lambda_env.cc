// lambda_environment: the lists of Lambda's defined runtime environment variables.
#include "guest-agent/agent/lambda_env.h"

namespace kiln::agent {

std::string lambda_handler(const protocol::LaunchSpec& spec) {
  if (!spec.lambda.handler.empty()) return spec.lambda.handler;
  return spec.argv.size() > 1 ? spec.argv[1] : std::string();
}

std::vector<std::string> lambda_environment(const protocol::LaunchSpec& spec, std::string_view api_address) {
  const protocol::LambdaSpec& l = spec.lambda;
  std::vector<std::string> env = {"LAMBDA_TASK_ROOT=/var/task", "LAMBDA_RUNTIME_DIR=/var/runtime", "LANG=en_US.UTF-8"};
  env.insert(env.end(), spec.env.begin(), spec.env.end());
  const std::string memory = std::to_string(l.memory_mib);
  for (std::string e : {"AWS_LAMBDA_RUNTIME_API=" + std::string(api_address),
                        "AWS_LAMBDA_FUNCTION_NAME=" + l.function_name,
                        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE=" + memory,
                        std::string("AWS_LAMBDA_FUNCTION_VERSION=$LATEST"),
                        "AWS_LAMBDA_LOG_GROUP_NAME=/aws/lambda/" + l.function_name,
                        "AWS_LAMBDA_LOG_STREAM_NAME=" + (spec.instance_id.empty() ? std::string("kiln") : spec.instance_id),
                        std::string("AWS_LAMBDA_INITIALIZATION_TYPE=on-demand"),
                        "AWS_REGION=" + l.region, "AWS_DEFAULT_REGION=" + l.region, std::string("TZ=:UTC")}) {
    env.push_back(std::move(e));
  }
  std::string handler = lambda_handler(spec);
  if (!handler.empty()) env.push_back("_HANDLER=" + handler);
  return env;
}

}  // namespace kiln::agent
