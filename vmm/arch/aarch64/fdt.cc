// The aarch64 device tree (fdt.h), written with libfdt's sequential-write API.
#include "vmm/arch/aarch64/fdt.h"

#include <libfdt.h>

#include <algorithm>
#include <cstdio>
#include <initializer_list>

#include "vmm/arch/aarch64/layout.h"

namespace kiln::vmm::aarch64 {
namespace {

constexpr uint32_t kGicPhandle = 1;
constexpr uint32_t kClockPhandle = 2;
constexpr uint32_t kSpiType = 0, kPpiType = 1;           // the GIC binding's first cell
constexpr uint32_t kEdgeRising = 1, kLevelHigh = 4;      // its third cell (IRQ_TYPE_*)
constexpr size_t kStartSize = 64 * 1024;

std::string hex(uint64_t v) {
  char buf[24];
  std::snprintf(buf, sizeof buf, "%llx", static_cast<unsigned long long>(v));
  return buf;
}

// One pass over libfdt's writer into a buffer of `size` bytes; -FDT_ERR_NOSPACE asks for more.
class Writer {
 public:
  explicit Writer(size_t size) : buf_(size) { check(fdt_create(buf_.data(), static_cast<int>(size)), "create"); }

  void begin(const std::string& name) { check(fdt_begin_node(buf_.data(), name.c_str()), "node " + name); }
  void end() { check(fdt_end_node(buf_.data()), "end node"); }
  void prop(const char* name) { check(fdt_property(buf_.data(), name, nullptr, 0), name); }
  void prop(const char* name, const std::string& s) { check(fdt_property_string(buf_.data(), name, s.c_str()), name); }
  // A string list ("a\0b\0"): compatible values, most specific first.
  void strings(const char* name, std::initializer_list<const char*> list) {
    std::string all;
    for (const char* s : list) all.append(s).push_back('\0');
    check(fdt_property(buf_.data(), name, all.data(), static_cast<int>(all.size())), name);
  }
  void u32(const char* name, uint32_t v) { check(fdt_property_u32(buf_.data(), name, v), name); }
  void u64(const char* name, uint64_t v) { check(fdt_property_u64(buf_.data(), name, v), name); }
  void bytes(const char* name, const std::vector<uint8_t>& b) {
    check(fdt_property(buf_.data(), name, b.data(), static_cast<int>(b.size())), name);
  }
  void cells(const char* name, const std::vector<uint32_t>& v) {
    std::vector<fdt32_t> be;
    for (uint32_t c : v) be.push_back(cpu_to_fdt32(c));
    check(fdt_property(buf_.data(), name, be.data(), static_cast<int>(be.size() * sizeof(fdt32_t))), name);
  }
  // reg/ranges pairs with two address and two size cells each.
  void reg(const std::vector<std::pair<uint64_t, uint64_t>>& ranges) {
    std::vector<uint32_t> v;
    for (auto [base, size] : ranges) {
      v.insert(v.end(), {static_cast<uint32_t>(base >> 32), static_cast<uint32_t>(base),
                         static_cast<uint32_t>(size >> 32), static_cast<uint32_t>(size)});
    }
    cells("reg", v);
  }

  Result<std::vector<uint8_t>> finish() {
    if (err_ != 0) return failure();
    check(fdt_finish(buf_.data()), "finish");
    if (err_ != 0) return failure();
    buf_.resize(fdt_totalsize(buf_.data()));
    return std::move(buf_);
  }
  void finish_reservemap() { check(fdt_finish_reservemap(buf_.data()), "reserve map"); }
  bool out_of_space() const { return err_ == -FDT_ERR_NOSPACE; }

 private:
  void check(int rc, const std::string& what) {
    if (rc < 0 && err_ == 0) {
      err_ = rc;
      what_ = what;
    }
  }
  Error failure() const { return make_error("device tree: libfdt: " + what_ + ": " + fdt_strerror(err_)); }

  std::vector<uint8_t> buf_;
  int err_ = 0;
  std::string what_;
};

Status check_spec(const FdtSpec& s) {
  if (s.vcpu_mpidrs.empty()) return make_error("device tree: no vCPUs");
  if (s.vcpu_mpidrs.size() > layout::kMaxVcpus) {
    return make_error("device tree: " + std::to_string(s.vcpu_mpidrs.size()) + " vCPUs, at most " +
                      std::to_string(layout::kMaxVcpus));
  }
  if (s.mem_base < layout::kDramBase || s.mem_size == 0 || s.mem_base + s.mem_size < s.mem_base) {
    return make_error("device tree: memory [0x" + hex(s.mem_base) + ", +0x" + hex(s.mem_size) + ") is not in DRAM");
  }
  if (s.initrd) {
    auto [start, end] = *s.initrd;
    if (start >= end || start < s.mem_base || end > s.mem_base + s.mem_size) {
      return make_error("device tree: initrd [0x" + hex(start) + ", 0x" + hex(end) + ") is not inside memory");
    }
  }
  std::vector<MmioDevice> all = s.virtio;
  if (s.serial) all.push_back(*s.serial);
  if (s.rtc) all.push_back(*s.rtc);
  std::vector<uint32_t> spis;
  std::vector<std::pair<uint64_t, uint64_t>> windows;
  for (const auto& d : all) {
    if (d.spi > layout::kLastSpi) return make_error("device tree: SPI " + std::to_string(d.spi) + " is out of range");
    if (std::find(spis.begin(), spis.end(), d.spi) != spis.end()) {
      return make_error("device tree: SPI " + std::to_string(d.spi) + " used twice");
    }
    spis.push_back(d.spi);
    if (d.size == 0 || d.base < layout::kSerialBase || d.base + d.size > layout::kDevicesEnd) {
      return make_error("device tree: device window 0x" + hex(d.base) + " is outside the device region");
    }
    for (auto [b, sz] : windows) {
      if (d.base < b + sz && b < d.base + d.size) return make_error("device tree: device windows at 0x" + hex(b) + " and 0x" + hex(d.base) + " overlap");
    }
    windows.emplace_back(d.base, d.size);
  }
  return ok_status();
}

void write_tree(Writer& w, const FdtSpec& s) {
  const uint32_t ncpus = static_cast<uint32_t>(s.vcpu_mpidrs.size());
  // GICv2 PPIs name the CPUs they go to (bits 8-15 of the flags cell); GICv3 ones do not.
  const uint32_t ppi_cpus = s.gic == GicVersion::kV2 ? (((1u << std::min(ncpus, 8u)) - 1) << 8) : 0;
  w.finish_reservemap();
  w.begin("");
  w.prop("compatible", "linux,dummy-virt");
  w.u32("#address-cells", 2);
  w.u32("#size-cells", 2);
  w.u32("interrupt-parent", kGicPhandle);

  w.begin("cpus");
  w.u32("#address-cells", 2);
  w.u32("#size-cells", 0);
  for (uint32_t i = 0; i < ncpus; ++i) {
    const uint64_t mpidr = s.vcpu_mpidrs[i];
    w.begin("cpu@" + hex(mpidr));
    w.prop("device_type", "cpu");
    w.prop("compatible", "arm,arm-v8");
    w.prop("enable-method", "psci");  // secondaries wait for PSCI CPU_ON
    w.cells("reg", {static_cast<uint32_t>(mpidr >> 32), static_cast<uint32_t>(mpidr)});
    w.end();
  }
  w.end();

  w.begin("memory@" + hex(s.mem_base));
  w.prop("device_type", "memory");
  w.reg({{s.mem_base, s.mem_size}});
  w.end();

  w.begin("chosen");
  w.prop("bootargs", s.bootargs);
  if (s.initrd) {
    w.u64("linux,initrd-start", s.initrd->first);
    w.u64("linux,initrd-end", s.initrd->second);
  }
  if (!s.rng_seed.empty()) w.bytes("rng-seed", s.rng_seed);
  if (s.serial) w.prop("stdout-path", "/uart@" + hex(s.serial->base));
  w.end();

  w.begin("intc@" + hex(layout::kGicDistBase));
  if (s.gic == GicVersion::kV3) {
    w.prop("compatible", "arm,gic-v3");
    w.reg({{layout::kGicDistBase, layout::kGicDistSize},
           {layout::kGicRedistBase, layout::kGicRedistSizePerCpu * ncpus}});
  } else {
    w.prop("compatible", "arm,cortex-a15-gic");
    w.reg({{layout::kGicDistBase, layout::kGicDistSize}, {layout::kGicCpuIfBase, layout::kGicCpuIfSize}});
  }
  w.prop("interrupt-controller");
  w.u32("#interrupt-cells", 3);
  w.cells("interrupts", {kPpiType, layout::kGicMaintenancePpi, kLevelHigh | ppi_cpus});
  w.u32("phandle", kGicPhandle);
  w.end();

  w.begin("timer");
  w.prop("compatible", "arm,armv8-timer");
  w.prop("always-on");
  std::vector<uint32_t> timer;
  for (uint32_t ppi : {layout::kTimerSecurePhysPpi, layout::kTimerPhysPpi, layout::kTimerVirtPpi, layout::kTimerHypPpi}) {
    timer.insert(timer.end(), {kPpiType, ppi, kLevelHigh | ppi_cpus});
  }
  w.cells("interrupts", timer);
  w.end();

  w.begin("psci");
  w.strings("compatible", {"arm,psci-0.2", "arm,psci"});
  w.prop("method", "hvc");
  w.end();

  if (s.serial || s.rtc) {
    w.begin("apb-pclk");
    w.prop("compatible", "fixed-clock");
    w.u32("#clock-cells", 0);
    w.u32("clock-frequency", 24000000);
    w.prop("clock-output-names", "clk24mhz");
    w.u32("phandle", kClockPhandle);
    w.end();
  }
  if (s.serial) {
    w.begin("uart@" + hex(s.serial->base));
    w.prop("compatible", "ns16550a");
    w.reg({{s.serial->base, s.serial->size}});
    w.u32("clocks", kClockPhandle);
    w.prop("clock-names", "apb_pclk");
    w.cells("interrupts", {kSpiType, s.serial->spi, kEdgeRising});
    w.end();
  }
  if (s.rtc) {
    w.begin("rtc@" + hex(s.rtc->base));
    w.strings("compatible", {"arm,pl031", "arm,primecell"});
    w.reg({{s.rtc->base, s.rtc->size}});
    w.u32("clocks", kClockPhandle);
    w.prop("clock-names", "apb_pclk");
    w.cells("interrupts", {kSpiType, s.rtc->spi, kLevelHigh});
    w.end();
  }
  for (const auto& d : s.virtio) {
    w.begin("virtio_mmio@" + hex(d.base));
    w.prop("compatible", "virtio,mmio");
    w.reg({{d.base, d.size}});
    w.cells("interrupts", {kSpiType, d.spi, kEdgeRising});
    w.prop("dma-coherent");
    w.end();
  }
  w.end();
}

}  // namespace

Result<std::vector<uint8_t>> build_fdt(const FdtSpec& spec) {
  KILN_TRY(check_spec(spec));
  for (size_t size = kStartSize; size <= layout::kFdtMaxSize; size *= 2) {
    Writer w(size);
    write_tree(w, spec);
    auto blob = w.finish();
    if (blob.ok() || !w.out_of_space()) return blob;
  }
  return make_error("device tree: over " + std::to_string(layout::kFdtMaxSize >> 20) + " MiB");
}

Result<uint64_t> fdt_address(uint64_t mem_base, uint64_t mem_size) {
  if (mem_size < 4 * layout::kFdtMaxSize) return make_error("memory of " + std::to_string(mem_size) + " bytes has no room for the device tree");
  const uint64_t top = (mem_base + mem_size) & ~(layout::kFdtMaxSize - 1);
  return top - layout::kFdtMaxSize;
}

}  // namespace kiln::vmm::aarch64
