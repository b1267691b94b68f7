// The option parser every kiln binary uses: glibc getopt_long behind a flag table, returning
// the arguments in command-line order with errors as values, plus the shared usage conventions
// (--help on stdout with exit 0, usage errors on stderr with exit 2).
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"

namespace kiln::cli {

// Exit status of a usage error (unknown flag, missing value, bad number), as in getopt tools.
inline constexpr int kUsageExit = 2;

enum class Value { kNone, kRequired, kOptional };

struct Flag {
  std::string_view name;  // long name without "--"; matched exactly (no abbreviations)
  char short_name = 0;  // e.g. 'h' for -h; 0: none
  Value value = Value::kNone;
};

enum class Order {
  kInterleaved,  // flags and positionals in any order; "--" ends the flags
  kStopAtPositional,  // the first positional (or "--") ends the flags: global flags before a command
};

// One argument, in command-line order.
struct Arg {
  const Flag* flag = nullptr;  // null: a positional, in `value`
  std::string value;  // the flag's value ("--f v", "--f=v"), or the positional
  bool has_value = false;  // false for a kNone flag or a kOptional flag given without "="

  bool is(std::string_view name) const { return flag != nullptr && flag->name == name; }
};

struct ParsedArgs {
  std::vector<Arg> args;
  // kInterleaved: everything after "--"; kStopAtPositional: the first positional and all after.
  std::vector<std::string> rest;
  bool saw_dash_dash = false;
};

// `args` without argv[0]. Errors name the flag: "unknown flag --x", "--x: missing value",
// "--x: takes no value". Not thread-safe (getopt keeps global state): call from main.
Result<ParsedArgs> parse(std::span<const Flag> flags, const std::vector<std::string>& args,
                         Order order = Order::kInterleaved);

// A decimal number for `flag`, at most `max`: "--x: want a number, got 'abc'".
Result<std::uint64_t> parse_number(std::string_view flag, std::string_view text, std::uint64_t max = UINT64_MAX);
// "on" or "off" for `flag`.
Result<bool> parse_on_off(std::string_view flag, std::string_view text);

// argv[1..argc) as strings.
std::vector<std::string> args_of(int argc, const char* const* argv);

// Prints `usage` to stdout and returns 0: what --help does.
int print_help(std::string_view usage);
// Prints "PROGRAM: MESSAGE" and then `usage` to stderr and returns kUsageExit.
int usage_error(std::string_view program, std::string_view message, std::string_view usage);

}  // namespace kiln::cli
