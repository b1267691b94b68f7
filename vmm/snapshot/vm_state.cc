// VmState (de)serialisation: a fixed field order under the container's format version.
#include "vmm/snapshot/vm_state.h"

#include <cstring>

#include "vmm/snapshot/byte_stream.h"

namespace kiln::vmm::snapshot {
namespace {

template <typename T>
bool same_bytes(const T& a, const T& b) {
  return std::memcmp(&a, &b, sizeof(T)) == 0;
}

void put_queue(ByteWriter& w, const virtio::QueueState& q) {
  w.u16(q.size);
  w.boolean(q.ready);
  w.u64(q.desc_table);
  w.u64(q.avail_ring);
  w.u64(q.used_ring);
  w.u16(q.next_avail);
  w.u16(q.next_used);
}

bool get_queue(ByteReader& r, virtio::QueueState& q) {
  return r.u16(q.size) && r.boolean(q.ready) && r.u64(q.desc_table) && r.u64(q.avail_ring) &&
         r.u64(q.used_ring) && r.u16(q.next_avail) && r.u16(q.next_used);
}

void put_bytes(ByteWriter& w, const std::vector<uint8_t>& v) {
  w.str(std::string_view(reinterpret_cast<const char*>(v.data()), v.size()));
}
bool get_bytes(ByteReader& r, std::vector<uint8_t>& v, size_t max) {
  std::string s;
  if (!r.str(s, max)) return false;
  v.assign(s.begin(), s.end());
  return true;
}

}  // namespace

bool VcpuState::operator==(const VcpuState& o) const {
  if (cpuid.size() != o.cpuid.size()) return false;
  for (size_t i = 0; i < cpuid.size(); ++i) {
    if (!same_bytes(cpuid[i], o.cpuid[i])) return false;
  }
  return same_bytes(regs, o.regs) && same_bytes(sregs, o.sregs) && same_bytes(xsave, o.xsave) &&
         same_bytes(xcrs, o.xcrs) && msrs == o.msrs && same_bytes(lapic, o.lapic) &&
         same_bytes(mp_state, o.mp_state) && same_bytes(events, o.events);
}

std::string encode_vm_state(const VmState& s) {
  ByteWriter w;
  w.str(s.config_json);
  w.u64(s.mem_bytes);
  w.pod(s.pic_master);
  w.pod(s.pic_slave);
  w.pod(s.ioapic);
  w.pod(s.pit);
  w.pod(s.clock);
  w.u32(static_cast<uint32_t>(s.vcpus.size()));
  for (const VcpuState& v : s.vcpus) {
    w.u32(static_cast<uint32_t>(v.cpuid.size()));
    for (const kvm_cpuid_entry2& e : v.cpuid) w.pod(e);
    w.pod(v.regs);
    w.pod(v.sregs);
    w.pod(v.xsave);
    w.pod(v.xcrs);
    w.u32(static_cast<uint32_t>(v.msrs.size()));
    for (const auto& [index, value] : v.msrs) {
      w.u32(index);
      w.u64(value);
    }
    w.pod(v.lapic);
    w.pod(v.mp_state);
    w.pod(v.events);
  }
  const legacy::Serial8250State& se = s.serial;
  for (uint8_t b : {se.ier, se.lcr, se.mcr, se.scr, se.dll, se.dlm}) w.u8(b);
  w.boolean(se.fifo_enabled);
  w.boolean(se.thre_pending);
  w.boolean(se.overrun);
  put_bytes(w, se.rx);
  const legacy::I8042State& k = s.i8042;
  put_bytes(w, k.out);
  w.u8(k.control);
  w.u8(k.output_port);
  w.u8(k.pending_command);
  w.boolean(k.last_write_was_command);
  w.u32(static_cast<uint32_t>(s.devices.size()));
  for (const DeviceState& d : s.devices) {
    w.str(d.name);
    const virtio::MmioTransportState& t = d.transport;
    w.u32(t.status);
    w.u64(t.acked_features);
    w.u32(t.device_features_sel);
    w.u32(t.driver_features_sel);
    w.u32(t.queue_sel);
    w.u32(t.interrupt_status);
    w.u32(static_cast<uint32_t>(t.queues.size()));
    for (const virtio::QueueState& q : t.queues) put_queue(w, q);
  }
  return w.data();
}

Result<VmState> decode_vm_state(std::string_view bytes) {
  ByteReader r(bytes);
  VmState s;
  uint32_t n = 0;
  r.str(s.config_json, 1 << 20);
  r.u64(s.mem_bytes);
  r.pod(s.pic_master, "pic master");
  r.pod(s.pic_slave, "pic slave");
  r.pod(s.ioapic, "ioapic");
  r.pod(s.pit, "pit");
  r.pod(s.clock, "kvmclock");
  if (r.count(n, kMaxSnapshotVcpus, "vcpus") && n == 0) r.fail("a snapshot needs at least one vCPU");
  for (uint32_t i = 0; r.ok() && i < n; ++i) {
    VcpuState v;
    uint32_t m = 0;
    r.count(m, kMaxCpuidEntries, "cpuid entries");
    v.cpuid.resize(r.ok() ? m : 0);
    for (auto& e : v.cpuid) r.pod(e, "cpuid entry");
    r.pod(v.regs, "regs");
    r.pod(v.sregs, "sregs");
    r.pod(v.xsave, "xsave");
    r.pod(v.xcrs, "xcrs");
    r.count(m, kMaxMsrs, "msrs");
    for (uint32_t j = 0; r.ok() && j < m; ++j) {
      uint32_t index = 0;
      uint64_t value = 0;
      if (r.u32(index) && r.u64(value)) v.msrs.emplace_back(index, value);
    }
    r.pod(v.lapic, "lapic");
    r.pod(v.mp_state, "mp_state");
    r.pod(v.events, "vcpu events");
    s.vcpus.push_back(std::move(v));
  }
  legacy::Serial8250State& se = s.serial;
  r.u8(se.ier) && r.u8(se.lcr) && r.u8(se.mcr) && r.u8(se.scr) && r.u8(se.dll) && r.u8(se.dlm) &&
      r.boolean(se.fifo_enabled) && r.boolean(se.thre_pending) && r.boolean(se.overrun) && get_bytes(r, se.rx, 4096);
  legacy::I8042State& k = s.i8042;
  get_bytes(r, k.out, 4096) && r.u8(k.control) && r.u8(k.output_port) && r.u8(k.pending_command) &&
      r.boolean(k.last_write_was_command);
  if (r.count(n, kMaxDevices, "devices")) {
    for (uint32_t i = 0; r.ok() && i < n; ++i) {
      DeviceState d;
      virtio::MmioTransportState& t = d.transport;
      uint32_t q = 0;
      r.str(d.name, 256) && r.u32(t.status) && r.u64(t.acked_features) && r.u32(t.device_features_sel) &&
          r.u32(t.driver_features_sel) && r.u32(t.queue_sel) && r.u32(t.interrupt_status) &&
          r.count(q, kMaxQueues, "queues");
      t.queues.resize(r.ok() ? q : 0);
      for (auto& qs : t.queues) get_queue(r, qs);
      s.devices.push_back(std::move(d));
    }
  }
  if (r.ok() && r.remaining() != 0) r.fail(std::to_string(r.remaining()) + " trailing bytes");
  if (!r.ok()) return make_error("snapshot state is malformed: " + r.error());
  return s;
}

}  // namespace kiln::vmm::snapshot
