// Where a test finds the build and source trees, found at run time rather than compiled in, so
// that test objects do not depend on the clone's path (ccache reuses them across clones).
#pragma once

#include <string>

namespace kiln::testing {

// The build tree: $KILN_BUILD_DIR when set, else the nearest folder above this test binary
// that holds CMakeCache.txt. Aborts the test binary with a message when neither is found.
const std::string& build_dir();

// The source tree: $KILN_SOURCE_DIR when set, else CMAKE_HOME_DIRECTORY of build_dir()'s cache.
const std::string& source_dir();

// build_dir() + "/" + relative, e.g. build_path("vmm/kiln-vmm").
std::string build_path(const std::string& relative);

}  // namespace kiln::testing
