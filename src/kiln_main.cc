// kiln: the command-line client of kilnd (deploy, invoke, logs [-f], ls, rm, status), with
// readable output by default and the API's JSON with --json. The work is in src/cli/.
#include <cstdio>

#include "common/cli/option_parser.h"
#include "src/cli/kiln_commands.h"
#include "src/cli/kiln_options.h"

int main(int argc, char** argv) {
  using namespace kiln::kilnd::cli;
  const auto args = kiln::cli::args_of(argc, argv);
  auto command = parse_kiln_args(args, kiln_environment());
  if (!command.ok()) {
    const int code = exit_code_of(command.error());
    if (code != kiln::cli::kUsageExit) {
      std::fprintf(stderr, "kiln: %s\n", command.error().message.c_str());
      return code;
    }
    return kiln::cli::usage_error("kiln", command.error().message, kiln_usage_for(args));
  }
  return run_kiln(*command);
}
