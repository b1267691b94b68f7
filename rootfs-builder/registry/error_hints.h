// Two registry failures whose fix is a flag of the front end (kiln-rootfs or the kiln CLI):
// the registry code says what happened in a neutral phrase, each front end adds its own flag.
// Header-only and dependency-free, so the kiln CLI can use it without linking kiln_rootfs.
#pragma once

#include <string>
#include <string_view>

namespace kiln::rootfs {

// "registry R requires authentication and no credentials were given"
inline constexpr std::string_view kNoCredentialsHint = "requires authentication and no credentials were given";
// After a TLS error that plain HTTP causes (OpenSSL's "wrong version number").
inline constexpr std::string_view kPlainHttpHint = "the registry may speak plain HTTP";

struct FrontEndFlags {
  std::string_view credentials;  // e.g. "use --creds USER:PASS or --authfile FILE"
  std::string_view plain_http;  // e.g. "use --tls-verify=false"
};

// `message` with the front end's flags after each hint phrase it holds:
// "... no credentials were given (use --creds ...)", "... plain HTTP: use --tls-verify=false".
inline std::string add_flag_hints(std::string message, const FrontEndFlags& flags) {
  if (auto at = message.find(kNoCredentialsHint); at != std::string::npos && !flags.credentials.empty()) {
    message.insert(at + kNoCredentialsHint.size(), " (" + std::string(flags.credentials) + ")");
  }
  if (auto at = message.find(kPlainHttpHint); at != std::string::npos && !flags.plain_http.empty()) {
    message.insert(at + kPlainHttpHint.size(), ": " + std::string(flags.plain_http));
  }
  return message;
}

}  // namespace kiln::rootfs
