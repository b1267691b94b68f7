// Runs a parsed `kiln` command against kilnd's API and prints the outcome; returns the exit
// status (0 ok, 1 an API, transport or function error, 2 a usage error).
#pragma once

#include "src/cli/kiln_options.h"

namespace kiln::kilnd::cli {

int run_kiln(const KilnCommand& command);

}  // namespace kiln::kilnd::cli
