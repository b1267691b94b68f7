// The host files a dynamically linked exec file needs at run time (its ELF interpreter and
// shared libraries), so the jail can bind them read-only at the same paths. A static exec
// file needs none. The dynamic loader itself resolves the list (`ld.so --list`, as ldd does).
#pragma once

#include <string>
#include <vector>

#include "common/result.h"

namespace kiln::jail {

// PT_INTERP of an ELF64 file; empty when it has none (static). Errors: unreadable, not ELF64.
Result<std::string> elf_interpreter(const std::string& path);

// Parses `ld.so --list` output into absolute paths; a "not found" library is an error.
Result<std::vector<std::string>> parse_loader_list(const std::string& text);

// Interpreter + libraries of `exec_file` (absolute host paths), empty for a static file.
// Remembered per file while it stays the same file (device, inode, size, mtime).
Result<std::vector<std::string>> exec_libraries(const std::string& exec_file);

// The same, always asking the loader.
Result<std::vector<std::string>> list_libraries(const std::string& exec_file);

}  // namespace kiln::jail
