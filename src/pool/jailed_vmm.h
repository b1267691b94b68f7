// The jailed strategy of VmmProcess: each kiln-vmm runs in src/jail's jail (namespaces,
// pivot_root, cgroups, per-VM uid/gid). Its configuration names jail paths (/vmlinux,
// /rootfs.img, /vsock.sock); kilnd reaches its sockets under the jail's root on the host.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "src/jail/jail_spec.h"
#include "src/pool/vmm_process.h"

namespace kiln::kilnd::pool {

// <run_dir>/../jail, or options.jail_base when set.
std::string jail_base_dir(const VmmBackendOptions& options);

// The jail of the instance with sequence number `index`: kernel, initramfs and rootfs bound
// read-only as /vmlinux, /initrd, /rootfs.img; limits from its memory and vCPUs.
jail::JailSpec vmm_jail_spec(const VmmBackendOptions& options, const InstanceSpec& spec, std::uint64_t index);

// Jails are built on a thread of their own, so the loop thread serves invocations meanwhile.
std::unique_ptr<VmmLauncher> make_jailed_launcher(asio::io_context& io, const VmmBackendOptions& options);

// Restart recovery: whether `cmdline` (NULs as spaces) is a jailed kiln-vmm of instance `id`.
bool is_jailed_vmm_cmdline(const std::string& cmdline, const std::string& id);
// Removes the jails left under `base` (<base>/<exec-name>/<id> and their cgroups), reporting
// each (their VMMs must be gone).
void remove_leftover_jails(const std::string& base, std::vector<std::string>& report);

}  // namespace kiln::kilnd::pool
