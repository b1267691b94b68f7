// A static program the jail tests run jailed: reports what it can see of itself (ids,
// capabilities, no_new_privs, environment, open fds, the files under "/", pid, rlimits) as
// "key: value" lines on stdout (and, for each --write=PATH argument, whether PATH opens for
// writing), prints "ready", then waits for EOF on stdin and exits 0.
#include <dirent.h>
#include <fcntl.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <linux/capability.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <string>

extern char** environ;

namespace {

void list_tree(const std::string& dir, std::string& out) {
  DIR* d = ::opendir(dir.empty() ? "/" : dir.c_str());
  if (!d) return;
  while (dirent* e = ::readdir(d)) {
    std::string name = e->d_name;
    if (name == "." || name == "..") continue;
    std::string path = dir + "/" + name;
    out += " " + path;
    struct stat st {};
    if (::lstat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode)) list_tree(path, out);
  }
  ::closedir(d);
}

}  // namespace

int main(int argc, char** argv) {
  uid_t ru, eu, su;
  gid_t rg, eg, sg;
  getresuid(&ru, &eu, &su);
  getresgid(&rg, &eg, &sg);
  std::printf("uid: %u %u %u\ngid: %u %u %u\n", ru, eu, su, rg, eg, sg);
  gid_t groups[64];
  int n = getgroups(64, groups);
  std::printf("groups:");
  for (int i = 0; i < n; ++i) std::printf(" %u", groups[i]);
  std::printf("\n");
  __user_cap_header_struct hdr{_LINUX_CAPABILITY_VERSION_3, 0};
  __user_cap_data_struct data[2] = {};
  syscall(SYS_capget, &hdr, data);
  std::printf("cap_effective: %x %x\ncap_permitted: %x %x\ncap_inheritable: %x %x\n", data[0].effective,
              data[1].effective, data[0].permitted, data[1].permitted, data[0].inheritable, data[1].inheritable);
  int bounding = 0;
  for (int c = 0; c < 64; ++c) bounding += prctl(PR_CAPBSET_READ, c, 0, 0, 0) == 1;
  std::printf("cap_bounding_count: %d\n", bounding);
  std::printf("no_new_privs: %d\n", prctl(PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0));
  int env = 0;
  for (char** e = environ; e && *e; ++e) ++env;
  std::printf("env_count: %d\nargc: %d\n", env, argc);
  for (int i = 0; i < argc; ++i) std::printf("argv: %s\n", argv[i]);
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a.rfind("--write=", 0) != 0) continue;
    int fd = ::open(a.c_str() + 8, O_WRONLY | O_CLOEXEC);
    std::printf("write %s: %s\n", a.c_str() + 8, fd >= 0 ? "ok" : std::strerror(errno));
    if (fd >= 0) ::close(fd);
  }
  std::string fds;
  for (int fd = 0; fd < 1024; ++fd)
    if (fcntl(fd, F_GETFD) >= 0) fds += " " + std::to_string(fd);
  std::printf("fds:%s\n", fds.c_str());
  std::string tree;
  list_tree("", tree);
  std::printf("tree:%s\n", tree.c_str());
  std::printf("pid: %d\n", static_cast<int>(getpid()));
  char host[128] = {};
  gethostname(host, sizeof host - 1);
  std::printf("hostname: %s\n", host);
  rlimit nofile{}, fsize{};
  getrlimit(RLIMIT_NOFILE, &nofile);
  getrlimit(RLIMIT_FSIZE, &fsize);
  std::printf("rlimit_nofile: %llu\nrlimit_fsize: %llu\n", static_cast<unsigned long long>(nofile.rlim_cur),
              static_cast<unsigned long long>(fsize.rlim_cur));
  int w = ::open("/kiln-probe-write-test", O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
  std::printf("root_writable: %d\n", w >= 0);
  if (w >= 0) ::close(w);
  std::printf("ready\n");
  std::fflush(stdout);
  char c;
  while (::read(0, &c, 1) > 0) {
  }
  return 0;
}
