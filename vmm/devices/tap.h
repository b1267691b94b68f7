// NetBackend: where a virtio-net device's frames go on the host: one frame (virtio_net_hdr
// included) per read or write on a non-blocking fd. kiln-vmm's is a TAP device opened by
// name (Tap); tests use a datagram socket pair.
#pragma once

#include <sys/uio.h>

#include <memory>
#include <span>
#include <string>

#include "common/result.h"
#include "common/unique_fd.h"

namespace kiln::vmm::devices {

class NetBackend {
 public:
  virtual ~NetBackend() = default;
  // Polled for EPOLLIN by the device; frames are read and written with readv/writev.
  virtual int fd() const = 0;
  // TUN_F_* offloads the reader (the guest) accepts.
  virtual Status set_offload(unsigned tun_flags) = 0;
};

// A TAP device (IFF_TAP | IFF_NO_PI | IFF_VNET_HDR, 12-byte virtio header), non-blocking.
class Tap final : public NetBackend {
 public:
  // Attaches to the TAP `name` (which the host, e.g. kilnd, created and owns) or creates it
  // when it does not exist and the caller may (CAP_NET_ADMIN). Errors name the device and
  // carry the OS error ("tap0: TUNSETIFF: Operation not permitted").
  static Result<std::unique_ptr<Tap>> open(const std::string& name);
  int fd() const override { return fd_.get(); }
  Status set_offload(unsigned tun_flags) override;
  const std::string& name() const { return name_; }

 private:
  Tap(UniqueFd fd, std::string name) : fd_(std::move(fd)), name_(std::move(name)) {}
  const UniqueFd fd_;
  const std::string name_;
};

// A plain fd as a backend with no offloads to set (tests: one end of a SOCK_DGRAM socketpair).
class FdNetBackend final : public NetBackend {
 public:
  explicit FdNetBackend(UniqueFd fd) : fd_(std::move(fd)) {}
  int fd() const override { return fd_.get(); }
  Status set_offload(unsigned) override { return ok_status(); }

 private:
  const UniqueFd fd_;
};

}  // namespace kiln::vmm::devices
