// Boot-time system setup for PID 1. Every step returns a Status; main.cc turns a failure into
// a console message and a clean reboot instead of letting PID 1 exit (a kernel panic).
#include "guest-agent/agent/boot.h"

#include <fcntl.h>
#include <net/if.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/reboot.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstring>

#include "common/io.h"
#include "common/protocol/frame.h"
#include "common/unique_fd.h"
#include "common/event_loop/event_loop.h"

namespace kiln::agent {

namespace {

Status do_mount(const char* src, const std::string& target, const char* type, unsigned long flags,
                const std::string& data = "") {
  KILN_TRY(io::make_dirs(target, 0755));
  if (::mount(src, target.c_str(), type, flags, data.empty() ? nullptr : data.c_str()) != 0) {
    return errno_error(std::string("mount ") + (type ? type : src) + " on " + target);
  }
  return ok_status();
}

Status write_file_if_absent(const std::string& path, const std::string& content) {
  struct stat st {};
  if (::lstat(path.c_str(), &st) == 0) return ok_status();
  UniqueFd fd(::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644));
  if (!fd) return errno_error("create " + path);
  return io::write_all(fd.get(), content, path);
}

}  // namespace

void console_line(const std::string& msg) {
  std::string line = "kiln-init: " + msg + "\n";
  (void)!::write(2, line.data(), line.size());
}

Status mount_early() {
  KILN_TRY(do_mount("devtmpfs", "/dev", "devtmpfs", MS_NOSUID, "mode=0755"));
  // The kernel may have found no /dev/console in the initramfs: point 0-2 at the real one.
  UniqueFd console(::open("/dev/console", O_RDWR | O_CLOEXEC));
  if (console) {
    for (int i = 0; i < 3; ++i) ::dup2(console.get(), i);
  }
  KILN_TRY(do_mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC));
  KILN_TRY(do_mount("sysfs", "/sys", "sysfs", MS_NOSUID | MS_NODEV | MS_NOEXEC));
  KILN_TRY(do_mount("devpts", "/dev/pts", "devpts", MS_NOSUID | MS_NOEXEC, "mode=0620,ptmxmode=0666"));
  KILN_TRY(do_mount("shm", "/dev/shm", "tmpfs", MS_NOSUID | MS_NODEV, "mode=1777"));
  return ok_status();
}

Status set_hostname(const std::string& name) {
  if (::sethostname(name.data(), name.size()) != 0) return errno_error("sethostname");
  return ok_status();
}

Status bring_up_loopback() {
  UniqueFd s(::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0));
  if (!s) return errno_error("socket for SIOCSIFFLAGS");
  ifreq ifr{};
  std::strncpy(ifr.ifr_name, "lo", IFNAMSIZ - 1);
  if (::ioctl(s.get(), SIOCGIFFLAGS, &ifr) != 0) return errno_error("SIOCGIFFLAGS lo");
  ifr.ifr_flags = static_cast<short>(ifr.ifr_flags | IFF_UP | IFF_RUNNING);
  if (::ioctl(s.get(), SIOCSIFFLAGS, &ifr) != 0) return errno_error("SIOCSIFFLAGS lo");
  return ok_status();
}

Status mount_overlay_root(const RootOptions& o) {
  const std::string lower = o.device.empty() ? o.lower_dir : o.work_dir + "/lower";
  const std::string rw = o.work_dir + "/rw";
  const std::string root = o.work_dir + "/root";
  if (!o.device.empty()) {
    // virtio-blk is probed before init runs, but allow a slow devtmpfs a bounded wait.
    std::uint64_t deadline = EventLoop::now_ms() + o.device_wait_ms;
    struct stat st {};
    while (::stat(o.device.c_str(), &st) != 0) {
      if (EventLoop::now_ms() >= deadline) return errno_error("waiting for " + o.device);
      ::usleep(5000);
    }
    KILN_TRY(do_mount(o.device.c_str(), lower, o.fstype.c_str(), MS_RDONLY | MS_NODEV));
  }
  KILN_TRY(do_mount("kiln-rw", rw, "tmpfs", MS_NODEV,
                    "size=" + std::to_string(o.overlay_mib) + "m,mode=0755"));
  KILN_TRY(io::make_dirs(rw + "/upper", 0755));
  KILN_TRY(io::make_dirs(rw + "/work", 0755));
  KILN_TRY(do_mount("overlay", root, "overlay", 0,
                    "lowerdir=" + lower + ",upperdir=" + rw + "/upper,workdir=" + rw + "/work"));
  for (const auto& m : o.move_mounts) {
    KILN_TRY(io::make_dirs(root + m, 0755));
    if (::mount(m.c_str(), (root + m).c_str(), nullptr, MS_MOVE, nullptr) != 0) {
      return errno_error("move mount " + m);
    }
  }
  for (const auto& b : o.bind_dirs) {
    KILN_TRY(do_mount(b.c_str(), root + b, nullptr, MS_BIND | MS_REC));
  }
  // switch_root: make the overlay "/" for this process and its children.
  if (::chdir(root.c_str()) != 0) return errno_error("chdir " + root);
  if (::mount(".", "/", nullptr, MS_MOVE, nullptr) != 0) return errno_error("move new root onto /");
  if (::chroot(".") != 0) return errno_error("chroot");
  if (::chdir("/") != 0) return errno_error("chdir /");
  KILN_TRY(do_mount("tmpfs", "/tmp", "tmpfs", MS_NOSUID | MS_NODEV, "mode=1777"));
  return ok_status();
}

std::string default_hosts(const std::string& hostname) {
  return "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n127.0.1.1\t" + hostname + "\n";
}

Status write_etc_files(const std::string& hostname) {
  KILN_TRY(io::make_dirs("/etc", 0755));
  KILN_TRY(write_file_if_absent("/etc/hosts", default_hosts(hostname)));
  // Without a network in the launch spec the guest has only loopback; a resolver pointing
  // there fails fast.
  KILN_TRY(write_file_if_absent("/etc/resolv.conf", "nameserver 127.0.0.1\noptions ndots:0\n"));
  return ok_status();
}

Result<std::optional<protocol::LaunchSpec>> read_config_drive(const std::string& device) {
  UniqueFd fd(::open(device.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd) {
    if (errno == ENOENT || errno == ENXIO || errno == ENODEV) return std::optional<protocol::LaunchSpec>();
    return errno_error("open " + device);
  }
  // Header first, then exactly the announced payload (capped by the frame format).
  std::string bytes(protocol::kHeaderSize, '\0');
  KILN_TRY(io::pread_all(fd.get(), bytes.data(), bytes.size(), 0, "config drive"));
  auto head = protocol::decode_frame(bytes);
  if (!head.ok()) return head.error().wrap("config drive");
  std::uint32_t len = 0;
  for (int i = 0; i < 4; ++i) len |= static_cast<std::uint32_t>(static_cast<unsigned char>(bytes[4 + i])) << (8 * i);
  bytes.resize(protocol::kHeaderSize + len);
  KILN_TRY(io::pread_all(fd.get(), bytes.data() + protocol::kHeaderSize, len, protocol::kHeaderSize, "config drive"));
  KILN_ASSIGN_OR_RETURN(protocol::LaunchSpec spec, protocol::decode_config_drive(bytes));
  return std::optional<protocol::LaunchSpec>(std::move(spec));
}

void reboot_now(const std::string& why) {
  console_line("rebooting: " + why);
  ::sync();
  ::reboot(RB_AUTOBOOT);
  // reboot(2) only fails without CAP_SYS_BOOT; a PID 1 must still never return.
  console_line("reboot failed: " + errno_error("reboot").message);
  while (true) ::pause();
}

}  // namespace kiln::agent
