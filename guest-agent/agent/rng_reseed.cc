// random(4) ioctls: RNDADDENTROPY (mix and credit), RNDRESEEDCRNG (reseed the CRNG now).
#include "guest-agent/agent/rng_reseed.h"

#include <fcntl.h>
#include <linux/random.h>
#include <sys/ioctl.h>

#include <cstring>
#include <vector>

#include "common/protocol/messages.h"
#include "common/unique_fd.h"

namespace kiln::agent {

Status reseed_kernel_rng(std::string_view seed, const char* device) {
  if (seed.empty()) return ok_status();
  if (seed.size() > protocol::kMaxIdentityEntropy) return make_error("entropy seed too large");
  UniqueFd fd(::open(device, O_WRONLY | O_CLOEXEC));
  if (!fd) return errno_error(std::string("open ") + device);
  // struct rand_pool_info ends in a flexible array: lay it out in one buffer.
  std::vector<unsigned char> buf(sizeof(rand_pool_info) + seed.size());
  rand_pool_info info{};
  info.entropy_count = static_cast<int>(seed.size() * 8);
  info.buf_size = static_cast<int>(seed.size());
  std::memcpy(buf.data(), &info, sizeof info);
  std::memcpy(buf.data() + sizeof info, seed.data(), seed.size());
  if (::ioctl(fd.get(), RNDADDENTROPY, buf.data()) != 0) return errno_error("RNDADDENTROPY");
  if (::ioctl(fd.get(), RNDRESEEDCRNG) != 0) return errno_error("RNDRESEEDCRNG");
  return ok_status();
}

}  // namespace kiln::agent
