// HostClaim: bind an abstract Unix socket, read the others from /proc/net/unix.
#include "src/net/host_claim.h"

#include <sys/socket.h>
#include <sys/un.h>

#include <cerrno>
#include <cstddef>
#include <cstring>

#include "common/io.h"

namespace kiln::net {

namespace {

constexpr std::string_view kClaimTag = "kiln-net/";
constexpr std::size_t kMaxProcNetUnixBytes = 64 << 20;

std::string describe(const NetworkClaim& c) {
  return "link prefix '" + c.link_prefix + "', instance range " + protocol::format_ip_prefix(c.instance_range);
}

bool ranges_overlap(const protocol::IpPrefix& a, const protocol::IpPrefix& b) {
  if (a.address.family != b.address.family) return false;
  // Two prefixes overlap exactly when one holds the other's network address.
  return protocol::prefix_contains(a, b.address) || protocol::prefix_contains(b, a.address);
}

}  // namespace

std::string claim_name(const NetworkClaim& claim) {
  return std::string(kClaimTag) + claim.link_prefix + "/" + protocol::format_ip_prefix(claim.instance_range);
}

std::vector<NetworkClaim> parse_claims(std::string_view text) {
  std::vector<NetworkClaim> out;
  const std::string tag = "@" + std::string(kClaimTag);
  while (!text.empty()) {
    std::size_t eol = text.find('\n');
    std::string_view line = text.substr(0, eol);
    text = eol == std::string_view::npos ? std::string_view() : text.substr(eol + 1);
    std::size_t at = line.find(tag);
    if (at == std::string_view::npos) continue;
    std::string_view name = line.substr(at + tag.size());
    name = name.substr(0, name.find_first_of(" \t\r"));
    std::size_t slash = name.find('/');
    if (slash == std::string_view::npos || slash == 0) continue;
    auto range = protocol::parse_ip_prefix(name.substr(slash + 1), protocol::IpFamily::kV4);
    if (!range.ok()) continue;
    out.push_back(NetworkClaim{std::string(name.substr(0, slash)), *range});
  }
  return out;
}

std::optional<std::string> claim_conflict(const NetworkClaim& mine, const NetworkClaim& other) {
  const std::string theirs = "another kilnd on this host has " + describe(other);
  if (mine.link_prefix == other.link_prefix) return theirs + ": the same link prefix";
  if (mine.link_prefix.starts_with(other.link_prefix) || other.link_prefix.starts_with(mine.link_prefix)) {
    return theirs + ": one link prefix starts with the other";
  }
  if (ranges_overlap(mine.instance_range, other.instance_range)) return theirs + ": the instance ranges overlap";
  return std::nullopt;
}

Result<HostClaim> HostClaim::take(const NetworkClaim& claim) {
  const std::string name = claim_name(claim);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (name.size() + 1 > sizeof(addr.sun_path)) return make_error("network claim name too long: " + name);
  std::memcpy(addr.sun_path + 1, name.data(), name.size());  // sun_path[0] = 0: abstract
  const auto len = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + 1 + name.size());
  UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!fd) return errno_error("network claim socket");
  if (::bind(fd.get(), reinterpret_cast<const sockaddr*>(&addr), len) != 0) {
    if (errno == EADDRINUSE) return make_error("another kilnd on this host has " + describe(claim));
    return errno_error("network claim " + name);
  }
  KILN_ASSIGN_OR_RETURN(std::string table, io::read_file("/proc/net/unix", kMaxProcNetUnixBytes));
  for (const NetworkClaim& other : parse_claims(table)) {
    if (other == claim) continue;  // ours: a second one could not have been bound
    if (auto conflict = claim_conflict(claim, other)) return make_error(*conflict);
  }
  return HostClaim(std::move(fd));
}

}  // namespace kiln::net
