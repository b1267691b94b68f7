// Boot: what kiln-init does as PID 1 before and around the agent loop: the early mounts,
// hostname, loopback, the overlay root over the read-only image and the switch into it,
// /etc/hosts and /etc/resolv.conf, the config drive, and the final sync + reboot.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "common/protocol/launch_spec.h"
#include "common/result.h"

namespace kiln::agent {

// devtmpfs on /dev (then fds 0-2 on /dev/console), proc, sysfs, devpts, /dev/shm.
Status mount_early();

// sethostname + IFF_UP on "lo" via ioctl(SIOCSIFFLAGS) (no external tools).
Status set_hostname(const std::string& name);
Status bring_up_loopback();

struct RootOptions {
  // Block device holding the image (mounted read-only at <work_dir>/lower), or empty when
  // lower_dir is already a directory to use as the overlay's lower layer (tests).
  std::string device = "/dev/vda";
  std::string fstype = "ext4";
  std::string lower_dir;  // used when device is empty
  std::string work_dir = "/mnt";  // holds lower/, rw/ (tmpfs: upper + work) and root/
  std::uint64_t overlay_mib = 256;
  std::uint64_t device_wait_ms = 5000;  // how long to wait for the device node to appear
  // Mount points moved into the new root (with their submounts) before switching.
  std::vector<std::string> move_mounts = {"/dev", "/proc", "/sys"};
  // Directories bind-mounted at the same path inside the new root (tests: socket dirs).
  std::vector<std::string> bind_dirs;
};

// Mounts the image under an overlay with a size-limited tmpfs upper, moves the API mounts
// into it, then switches root the switch_root way (chdir, MS_MOVE onto "/", chroot), which
// also works from an initramfs where pivot_root(2) does not. Mounts a tmpfs on /tmp inside.
Status mount_overlay_root(const RootOptions& options);

// Writes /etc/hosts and /etc/resolv.conf when absent (a dangling symlink counts as present).
// The network step (guest-agent/net) then replaces resolv.conf and adds hosts entries when the
// launch spec has a network.
Status write_etc_files(const std::string& hostname);
// The /etc/hosts kiln-init writes when the image has none: localhost and the hostname.
std::string default_hosts(const std::string& hostname);

// Reads a launch spec from a config drive (raw frame at offset 0), if the device exists.
// nullopt: no such device. Error: the device exists but does not hold a valid spec.
Result<std::optional<protocol::LaunchSpec>> read_config_drive(const std::string& device);

// sync(), then reboot(RB_AUTOBOOT); never returns (the VMM turns the reset into VM exit).
[[noreturn]] void reboot_now(const std::string& why);

// Writes "kiln-init: <msg>\n" to the console (fd 2).
void console_line(const std::string& msg);

}  // namespace kiln::agent
