// The flag table -> getopt_long adapter (see option_parser.h).
#include "common/cli/option_parser.h"

#include <getopt.h>

#include <charconv>
#include <cstdio>

namespace kiln::cli {
namespace {

// getopt_long's value for the long form of flags[i]; short forms return their character.
constexpr int kLongBase = 256;

// "--name" or "--name=..." exactly: getopt_long also accepts unique abbreviations, kiln does not.
bool spelled_out(std::string_view typed, std::string_view name) {
  if (!typed.starts_with("--")) return false;
  typed.remove_prefix(2);
  return typed.starts_with(name) && (typed.size() == name.size() || typed[name.size()] == '=');
}

std::string flag_text(std::string_view typed) { return std::string(typed.substr(0, typed.find('='))); }

}  // namespace

Result<ParsedArgs> parse(std::span<const Flag> flags, const std::vector<std::string>& args, Order order) {
  // getopt wants NUL-terminated, writable argv and option names.
  std::vector<std::string> storage;
  storage.reserve(args.size() + 1);
  storage.emplace_back("kiln");
  storage.insert(storage.end(), args.begin(), args.end());
  std::vector<char*> argv;
  for (auto& s : storage) argv.push_back(s.data());
  argv.push_back(nullptr);
  const int argc = static_cast<int>(storage.size());

  std::vector<std::string> names;
  names.reserve(flags.size());
  std::vector<option> longopts;
  // "-": positionals come back in order (no permutation); "+": stop at the first one.
  // ":": a missing value is reported as ':' rather than printed by getopt.
  std::string optstring = order == Order::kInterleaved ? "-:" : "+:";
  for (std::size_t i = 0; i < flags.size(); ++i) {
    const Flag& f = flags[i];
    names.emplace_back(f.name);
    const int has_arg = f.value == Value::kNone ? no_argument
                        : f.value == Value::kRequired ? required_argument
                                                      : optional_argument;
    longopts.push_back(option{names.back().c_str(), has_arg, nullptr, kLongBase + static_cast<int>(i)});
    if (f.short_name != 0) {
      optstring += f.short_name;
      if (f.value == Value::kRequired) optstring += ':';
      if (f.value == Value::kOptional) optstring += "::";
    }
  }
  longopts.push_back(option{nullptr, 0, nullptr, 0});

  auto by_short = [&](int c) -> const Flag* {
    for (const Flag& f : flags) {
      if (f.short_name != 0 && f.short_name == c) return &f;
    }
    return nullptr;
  };
  auto display = [&](const Flag& f, std::string_view typed) {
    return typed.starts_with("--") || f.short_name == 0 ? "--" + std::string(f.name) : std::string("-") + f.short_name;
  };

  ParsedArgs out;
  opterr = 0;
  optind = 0;  // glibc: a full re-initialisation, so parse() can run more than once
  while (true) {
    const int at = optind > 0 ? optind : 1;  // the argv element this call looks at
    const std::string_view typed = at < argc ? std::string_view(argv[at]) : std::string_view();
    const int c = getopt_long(argc, argv.data(), optstring.c_str(), longopts.data(), nullptr);
    if (c == -1) {
      out.saw_dash_dash = typed == "--" && optind == at + 1;
      for (int i = optind; i < argc; ++i) out.rest.emplace_back(argv[i]);
      break;
    }
    if (c == 1) {  // a positional (kInterleaved)
      out.args.push_back(Arg{nullptr, optarg, true});
      continue;
    }
    // An abbreviated long name is unknown, whatever else getopt_long found wrong with it.
    const bool abbreviated = (c == '?' || c == ':') && optopt >= kLongBase &&
                             typed.starts_with("--") && !spelled_out(typed, flags[optopt - kLongBase].name);
    if (c == '?') {
      if (optopt >= kLongBase && !abbreviated) {
        return make_error("--" + std::string(flags[optopt - kLongBase].name) + ": takes no value");
      }
      if (optopt != 0 && optopt < kLongBase) return make_error(std::string("unknown flag -") + static_cast<char>(optopt));
      return make_error("unknown flag " + flag_text(typed));
    }
    if (c == ':') {
      const Flag* f = optopt >= kLongBase ? &flags[optopt - kLongBase] : by_short(optopt);
      if (f == nullptr || abbreviated) return make_error("unknown flag " + flag_text(typed));
      return make_error(display(*f, typed) + ": missing value");
    }
    const Flag* f = nullptr;
    if (c >= kLongBase) {
      f = &flags[c - kLongBase];
      if (!spelled_out(typed, f->name)) return make_error("unknown flag " + flag_text(typed));
    } else {
      f = by_short(c);
      if (f == nullptr) return make_error(std::string("unknown flag -") + static_cast<char>(c));
    }
    Arg a{f, {}, optarg != nullptr};
    if (optarg != nullptr) a.value = optarg;
    out.args.push_back(std::move(a));
  }
  return out;
}

Result<std::uint64_t> parse_number(std::string_view flag, std::string_view text, std::uint64_t max) {
  std::uint64_t n = 0;
  const char* end = text.data() + text.size();
  auto [ptr, ec] = std::from_chars(text.data(), end, n);
  // from_chars takes no sign and no spaces; a leading '-' or '+' is refused here.
  if (text.empty() || ec != std::errc() || ptr != end) {
    return make_error(std::string(flag) + ": want a number, got '" + std::string(text) + "'");
  }
  if (n > max) return make_error(std::string(flag) + ": at most " + std::to_string(max) + ", got " + std::string(text));
  return n;
}

Result<bool> parse_on_off(std::string_view flag, std::string_view text) {
  if (text == "on") return true;
  if (text == "off") return false;
  return make_error(std::string(flag) + ": want on or off, got '" + std::string(text) + "'");
}

std::vector<std::string> args_of(int argc, const char* const* argv) {
  std::vector<std::string> out;
  for (int i = 1; i < argc; ++i) out.emplace_back(argv[i] != nullptr ? argv[i] : "");
  return out;
}

int print_help(std::string_view usage) {
  std::fwrite(usage.data(), 1, usage.size(), stdout);
  return 0;
}

int usage_error(std::string_view program, std::string_view message, std::string_view usage) {
  std::fprintf(stderr, "%.*s: %.*s\n", static_cast<int>(program.size()), program.data(), static_cast<int>(message.size()),
               message.data());
  std::fwrite(usage.data(), 1, usage.size(), stderr);
  return kUsageExit;
}

}  // namespace kiln::cli
