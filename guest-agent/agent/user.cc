// resolve_user: passwd(5)/group(5) line parsing with strict numeric fields.
#include "guest-agent/agent/user.h"

#include <optional>

#include "common/protocol/record.h"

namespace kiln::agent {

namespace {

std::vector<std::string_view> split(std::string_view s, char sep) {
  std::vector<std::string_view> out;
  std::size_t start = 0;
  while (true) {
    auto p = s.find(sep, start);
    if (p == std::string_view::npos) {
      out.push_back(s.substr(start));
      return out;
    }
    out.push_back(s.substr(start, p - start));
    start = p + 1;
  }
}

std::optional<std::uint32_t> parse_id(std::string_view s) {
  auto v = protocol::parse_u64(s);
  // (uid_t)-1 is reserved; reject it and anything wider than 32 bits.
  if (!v || *v >= 0xffffffffull) return std::nullopt;
  return static_cast<std::uint32_t>(*v);
}

struct PasswdEntry {
  std::string_view name;
  std::uint32_t uid;
  std::uint32_t gid;
  std::string_view home;
};

struct GroupEntry {
  std::string_view name;
  std::uint32_t gid;
  std::vector<std::string_view> members;
};

std::vector<PasswdEntry> parse_passwd(std::string_view text) {
  std::vector<PasswdEntry> out;
  for (auto line : split(text, '\n')) {
    if (line.empty() || line[0] == '#') continue;
    auto f = split(line, ':');
    if (f.size() < 7) continue;  // malformed lines are skipped, like glibc does
    auto uid = parse_id(f[2]);
    auto gid = parse_id(f[3]);
    if (!uid || !gid || f[0].empty()) continue;
    out.push_back({f[0], *uid, *gid, f[5]});
  }
  return out;
}

std::vector<GroupEntry> parse_group(std::string_view text) {
  std::vector<GroupEntry> out;
  for (auto line : split(text, '\n')) {
    if (line.empty() || line[0] == '#') continue;
    auto f = split(line, ':');
    if (f.size() < 4) continue;
    auto gid = parse_id(f[2]);
    if (!gid || f[0].empty()) continue;
    GroupEntry g{f[0], *gid, {}};
    if (!f[3].empty()) g.members = split(f[3], ',');
    out.push_back(std::move(g));
  }
  return out;
}

}  // namespace

Result<Credentials> resolve_user(std::string_view spec, std::string_view passwd,
                                 std::string_view group) {
  Credentials c;
  if (spec.empty()) spec = "0";
  std::string_view user_part = spec;
  std::optional<std::string_view> group_part;
  if (auto colon = spec.find(':'); colon != std::string_view::npos) {
    user_part = spec.substr(0, colon);
    group_part = spec.substr(colon + 1);
    if (user_part.empty() || group_part->empty()) {
      return make_error("user '" + std::string(spec) + "': empty user or group");
    }
  }
  auto users = parse_passwd(passwd);
  auto groups = parse_group(group);

  const PasswdEntry* entry = nullptr;
  if (auto uid = parse_id(user_part)) {
    c.uid = *uid;
    for (const auto& e : users) {
      if (e.uid == *uid) {
        entry = &e;
        break;
      }
    }
  } else {
    for (const auto& e : users) {
      if (e.name == user_part) {
        entry = &e;
        break;
      }
    }
    if (!entry) return make_error("user '" + std::string(user_part) + "' not found in /etc/passwd");
    c.uid = entry->uid;
  }
  if (entry) {
    c.gid = entry->gid;
    c.name = std::string(entry->name);
    if (!entry->home.empty()) c.home = std::string(entry->home);
  }
  if (group_part) {
    if (auto gid = parse_id(*group_part)) {
      c.gid = *gid;
    } else {
      bool found = false;
      for (const auto& g : groups) {
        if (g.name == *group_part) {
          c.gid = g.gid;
          found = true;
          break;
        }
      }
      if (!found) return make_error("group '" + std::string(*group_part) + "' not found in /etc/group");
    }
  }
  c.groups.push_back(c.gid);
  if (!c.name.empty()) {
    for (const auto& g : groups) {
      for (auto m : g.members) {
        if (m == c.name && g.gid != c.gid) c.groups.push_back(g.gid);
      }
    }
  }
  return c;
}

}  // namespace kiln::agent
