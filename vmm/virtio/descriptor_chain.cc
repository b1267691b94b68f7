// Descriptor-chain walker and chain cursors.
#include "vmm/virtio/descriptor_chain.h"

#include <algorithm>
#include <bit>
#include <cstring>
#include <string>

#include "vmm/virtio/virtio_constants.h"

namespace kiln::vmm::virtio {

static_assert(std::endian::native == std::endian::little,
              "virtio structures are little-endian; kiln-vmm targets x86_64");

Result<DescriptorChain> walk_descriptor_chain(const GuestMemory& mem, GuestAddress desc_table,
                                              uint16_t queue_size, uint16_t head,
                                              ChainWalkOptions opts) {
  if (queue_size == 0) return make_error("descriptor chain: queue size is 0");
  if (head >= queue_size) return make_error("descriptor chain: head index out of range");

  DescriptorChain chain;
  chain.head = head;

  GuestAddress table = desc_table;
  uint32_t table_size = queue_size;
  uint32_t budget = queue_size;  // hops allowed in the current table: no chain is longer
  uint32_t hops = 0;
  bool in_indirect = false;
  bool seen_writable = false;
  uint32_t idx = head;

  while (true) {
    if (++hops > budget) {
      return make_error("descriptor chain: longer than its table (loop?)");
    }
    auto desc_addr = table.checked_add(uint64_t{idx} * sizeof(VirtqDesc));
    if (!desc_addr) return make_error("descriptor chain: descriptor address overflows");
    KILN_ASSIGN_OR_RETURN(VirtqDesc d, mem.read_obj<VirtqDesc>(*desc_addr));

    if (d.flags & kDescFlagIndirect) {
      // virtio 1.2 §2.7.5.3.1: one table per descriptor, never combined with NEXT.
      if (!opts.indirect_allowed) {
        return make_error("descriptor chain: indirect descriptor without VIRTIO_F_INDIRECT_DESC");
      }
      if (in_indirect) return make_error("descriptor chain: nested indirect table");
      if (d.flags & kDescFlagNext) {
        return make_error("descriptor chain: indirect descriptor with NEXT set");
      }
      if (d.len == 0 || d.len % sizeof(VirtqDesc) != 0) {
        return make_error("descriptor chain: indirect table length is not a multiple of 16");
      }
      uint32_t entries = d.len / sizeof(VirtqDesc);
      if (entries > queue_size) {
        return make_error("descriptor chain: indirect table larger than the queue");
      }
      if (!mem.check_range(GuestAddress(d.addr), d.len)) {
        return make_error("descriptor chain: indirect table outside guest memory");
      }
      table = GuestAddress(d.addr);
      table_size = entries;
      budget = entries;
      hops = 0;
      in_indirect = true;
      idx = 0;
      continue;
    }

    const bool writable = (d.flags & kDescFlagWrite) != 0;
    // virtio 1.2 §2.7.4.2: device-readable buffers come before device-writable ones.
    if (!writable && seen_writable) {
      return make_error("descriptor chain: readable buffer after a writable one");
    }
    seen_writable = seen_writable || writable;
    if (d.len > 0) {
      auto span = mem.slice(GuestAddress(d.addr), d.len);
      if (!span.ok()) return span.error().wrap("descriptor chain: buffer");
      if (writable) {
        chain.writable.push_back(*span);
        chain.writable_len += d.len;
      } else {
        chain.readable.push_back(*span);
        chain.readable_len += d.len;
      }
    }
    if (chain.readable_len > UINT32_MAX || chain.writable_len > UINT32_MAX) {
      return make_error("descriptor chain: total length above 4 GiB");
    }

    if (!(d.flags & kDescFlagNext)) break;
    if (d.next >= table_size) return make_error("descriptor chain: next index out of range");
    idx = d.next;
  }
  return chain;
}

namespace {

// Visits the next n bytes of `bufs` from the cursor (idx, off) as host spans, advancing the
// cursor. The caller has checked that n bytes remain. Shared by ChainReader and ChainWriter.
template <typename Fn>
void walk(const std::vector<std::span<uint8_t>>& bufs, size_t& idx, size_t& off, uint64_t n, Fn&& fn) {
  uint64_t left = n;
  while (left > 0) {
    const auto& b = bufs[idx];
    size_t k = static_cast<size_t>(std::min<uint64_t>(b.size() - off, left));
    fn(b.subspan(off, k));
    left -= k;
    off += k;
    if (off == b.size()) {
      ++idx;
      off = 0;
    }
  }
}

}  // namespace

ChainReader::ChainReader(const std::vector<std::span<uint8_t>>& bufs) : bufs_(bufs) {
  for (const auto& b : bufs_) remaining_ += b.size();
}

Status ChainReader::read(std::span<uint8_t> out) {
  if (out.size() > remaining_) return make_error("chain: read past the readable buffers");
  size_t done = 0;
  walk(bufs_, idx_, off_, out.size(), [&](std::span<uint8_t> piece) {
    std::memcpy(out.data() + done, piece.data(), piece.size());
    done += piece.size();
  });
  remaining_ -= out.size();
  return ok_status();
}

Status ChainReader::skip(uint64_t n) {
  auto r = take(n);
  if (!r.ok()) return r.error();
  return ok_status();
}

Result<std::vector<std::span<uint8_t>>> ChainReader::take(uint64_t n) {
  if (n > remaining_) return make_error("chain: read past the readable buffers");
  std::vector<std::span<uint8_t>> out;
  walk(bufs_, idx_, off_, n, [&](std::span<uint8_t> piece) { out.push_back(piece); });
  remaining_ -= n;
  return out;
}

ChainWriter::ChainWriter(const std::vector<std::span<uint8_t>>& bufs) : bufs_(bufs) {
  for (const auto& b : bufs_) remaining_ += b.size();
}

Status ChainWriter::write(std::span<const uint8_t> in) {
  if (in.size() > remaining_) return make_error("chain: write past the writable buffers");
  size_t done = 0;
  walk(bufs_, idx_, off_, in.size(), [&](std::span<uint8_t> piece) {
    std::memcpy(piece.data(), in.data() + done, piece.size());
    done += piece.size();
  });
  remaining_ -= in.size();
  written_ += in.size();
  return ok_status();
}

Result<std::vector<std::span<uint8_t>>> ChainWriter::take(uint64_t n) {
  if (n > remaining_) return make_error("chain: write past the writable buffers");
  std::vector<std::span<uint8_t>> out;
  walk(bufs_, idx_, off_, n, [&](std::span<uint8_t> piece) { out.push_back(piece); });
  remaining_ -= n;
  written_ += n;
  return out;
}

}  // namespace kiln::vmm::virtio
