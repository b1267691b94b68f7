// virtio-blk: request handling against a temp raw image, with hostile requests.
#include "vmm/devices/block_device.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <string>

#include "tests/unit/vmm/virtio/virtq_builder.h"
#include "vmm/devices/block_request.h"
#include "vmm/virtio/mmio_transport.h"

namespace kiln::vmm::devices {
namespace {

using virtio::testing::Buf;
using virtio::testing::VirtqBuilder;

constexpr uint64_t kHdr = 0x10000;
constexpr uint64_t kData = 0x20000;
constexpr uint64_t kStatus = 0x30000;
constexpr uint64_t kSectors = 8;

std::string make_image(const std::string& dir) {
  std::string path = dir + "/disk.img";
  UniqueFd fd(::open(path.c_str(), O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600));
  EXPECT_TRUE(fd.valid());
  std::vector<uint8_t> content(kSectors * 512);
  for (size_t i = 0; i < content.size(); ++i) content[i] = static_cast<uint8_t>(i / 512 + 1);
  EXPECT_EQ(::write(fd.get(), content.data(), content.size()), static_cast<ssize_t>(content.size()));
  return path;
}

class BlockTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/kiln-blk-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    path_ = make_image(dir_);
  }
  void TearDown() override {
    ::unlink(path_.c_str());
    ::rmdir(dir_.c_str());
  }

  void open_device(bool read_only, std::string id = "rootfs") {
    auto d = BlockDevice::open({path_, read_only, std::move(id), {}, {}});
    ASSERT_TRUE(d.ok()) << d.error().message;
    dev_ = *d;
    std::vector<virtio::Queue> qs{vq_.queue(BlockDevice::kQueueSize)};
    ASSERT_TRUE(dev_->activate(mem_, std::move(qs), 0, irq_).ok());
  }

  void header(uint32_t type, uint64_t sector) {
    uint8_t h[16] = {};
    std::memcpy(h, &type, 4);
    std::memcpy(h + 8, &sector, 8);
    virtio::testing::write_bytes(mem_, kHdr, std::vector<uint8_t>(h, h + 16));
    virtio::testing::write_bytes(mem_, kStatus, {0xff});
  }
  // Submits one chain and returns (used len, status byte).
  std::pair<uint32_t, uint8_t> run(const std::vector<Buf>& bufs) {
    uint16_t before = vq_.used_idx();
    vq_.add_chain(bufs);
    EXPECT_TRUE(dev_->process_queue(0).ok());
    EXPECT_EQ(vq_.used_idx(), static_cast<uint16_t>(before + 1));
    auto [id, len] = vq_.used_elem(before);
    return {len, *mem_.read_obj<uint8_t>(GuestAddress(kStatus))};
  }
  std::vector<uint8_t> file_bytes() {
    UniqueFd fd(::open(path_.c_str(), O_RDONLY | O_CLOEXEC));
    std::vector<uint8_t> b(kSectors * 512);
    EXPECT_EQ(::pread(fd.get(), b.data(), b.size(), 0), static_cast<ssize_t>(b.size()));
    return b;
  }

  std::string dir_, path_;
  GuestMemory mem_ = virtio::testing::make_memory();
  VirtqBuilder vq_{mem_, 0x1000, 16};
  int irqs_ = 0;
  virtio::Interrupt irq_{[this] { ++irqs_; }};
  std::shared_ptr<BlockDevice> dev_;
};

TEST(BlockRequest, ParseAndBounds) {
  uint8_t h[16] = {1, 0, 0, 0, 0, 0, 0, 0, 5, 0, 0, 0, 0, 0, 0, 0};
  auto r = parse_block_request_header(h);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->type, kBlkTypeOut);
  EXPECT_EQ(r->sector, 5u);
  EXPECT_FALSE(parse_block_request_header(std::span<const uint8_t>(h, 15)).ok());

  EXPECT_TRUE(check_block_range(0, 8 * 512, 8).ok());
  EXPECT_TRUE(check_block_range(8, 0, 8).ok());
  EXPECT_FALSE(check_block_range(7, 1024, 8).ok());
  EXPECT_FALSE(check_block_range(9, 0, 8).ok());
  EXPECT_FALSE(check_block_range(0, 100, 8).ok());
  EXPECT_FALSE(check_block_range(UINT64_MAX, 512, 8).ok());
  EXPECT_FALSE(check_block_range(UINT64_MAX - 1, 1024, UINT64_MAX).ok());
  EXPECT_TRUE(check_block_range(1, UINT64_MAX - 511, UINT64_MAX).ok());
  EXPECT_FALSE(check_block_range(UINT64_MAX, 512, UINT64_MAX).ok());
}

TEST_F(BlockTest, ConfigAndFeatures) {
  open_device(true);
  EXPECT_EQ(dev_->capacity_sectors(), kSectors);
  uint8_t cap[8];
  dev_->read_config(0, cap);
  uint64_t v;
  std::memcpy(&v, cap, 8);
  EXPECT_EQ(v, kSectors);
  EXPECT_TRUE(dev_->device_features() & virtio::feature_bit(kBlkFeatureRo));
  EXPECT_TRUE(dev_->device_features() & virtio::feature_bit(kBlkFeatureSegMax));
  uint8_t seg[4];
  dev_->read_config(12, seg);
  uint32_t seg_max;
  std::memcpy(&seg_max, seg, 4);
  EXPECT_EQ(seg_max, BlockDevice::kSegMax);
  EXPECT_TRUE(dev_->device_features() & virtio::feature_bit(virtio::kFeatureVersion1));
  auto rw = BlockDevice::open({path_, false, "x", {}, {}});
  ASSERT_TRUE(rw.ok());
  EXPECT_FALSE((*rw)->device_features() & virtio::feature_bit(kBlkFeatureRo));
}

TEST_F(BlockTest, OpenMissingFileFails) {
  EXPECT_FALSE(BlockDevice::open({dir_ + "/nope", true, "", {}, {}}).ok());
}

TEST_F(BlockTest, ReadSectors) {
  open_device(true);
  header(kBlkTypeIn, 2);
  auto [len, st] = run({{kHdr, 16, false}, {kData, 1024, true}, {kStatus, 1, true}});
  EXPECT_EQ(st, kBlkStatusOk);
  EXPECT_EQ(len, 1025u);
  auto data = virtio::testing::read_bytes(mem_, kData, 1024);
  EXPECT_EQ(data[0], 3);
  EXPECT_EQ(data[1023], 4);
  EXPECT_EQ(irqs_, 1);
  EXPECT_EQ(dev_->counters().bytes_to_guest, 1024u);
}

TEST_F(BlockTest, ReadWithDataAndStatusInOneBuffer) {
  open_device(true);
  header(kBlkTypeIn, 0);
  // Data and status share one writable descriptor: status is its last byte.
  vq_.add_chain({{kHdr, 16, false}, {kData, 513, true}});
  ASSERT_TRUE(dev_->process_queue(0).ok());
  EXPECT_EQ(vq_.used_elem(0).second, 513u);
  EXPECT_EQ(*mem_.read_obj<uint8_t>(GuestAddress(kData + 512)), kBlkStatusOk);
  EXPECT_EQ(*mem_.read_obj<uint8_t>(GuestAddress(kData)), 1);
}

TEST_F(BlockTest, ReadIntoManySegments) {
  open_device(true);
  header(kBlkTypeIn, 0);
  // Header + 8 one-sector segments + status in an indirect table.
  VirtqBuilder::write_desc_at(mem_, 0x50000, kHdr, 16, virtio::kDescFlagNext, 1);
  for (uint16_t i = 0; i < 8; ++i) {
    VirtqBuilder::write_desc_at(mem_, 0x50000 + 16 * (i + 1), kData + 0x1000 * i, 512,
                                virtio::kDescFlagNext | virtio::kDescFlagWrite, i + 2);
  }
  VirtqBuilder::write_desc_at(mem_, 0x50000 + 16 * 9, kStatus, 1, virtio::kDescFlagWrite, 0);
  virtio::Queue q = vq_.queue(BlockDevice::kQueueSize);
  q.indirect_allowed = true;
  dev_->reset();
  ASSERT_TRUE(dev_->activate(mem_, {q}, 0, irq_).ok());
  vq_.set_desc(0, 0x50000, 16 * 10, virtio::kDescFlagIndirect, 0);
  vq_.publish(0);
  ASSERT_TRUE(dev_->process_queue(0).ok());
  EXPECT_EQ(vq_.used_elem(0).second, 8u * 512 + 1);
  EXPECT_EQ(*mem_.read_obj<uint8_t>(GuestAddress(kStatus)), kBlkStatusOk);
  for (uint8_t i = 0; i < 8; ++i) {
    EXPECT_EQ(*mem_.read_obj<uint8_t>(GuestAddress(kData + 0x1000 * i)), i + 1);
    EXPECT_EQ(*mem_.read_obj<uint8_t>(GuestAddress(kData + 0x1000 * i + 511)), i + 1);
  }
}

TEST_F(BlockTest, WriteSectors) {
  open_device(false);
  header(kBlkTypeOut, 7);
  virtio::testing::write_bytes(mem_, kData, std::vector<uint8_t>(512, 0xaa));
  auto [len, st] = run({{kHdr, 16, false}, {kData, 512, false}, {kStatus, 1, true}});
  EXPECT_EQ(st, kBlkStatusOk);
  EXPECT_EQ(len, 1u);
  auto f = file_bytes();
  EXPECT_EQ(f[7 * 512], 0xaa);
  EXPECT_EQ(f[8 * 512 - 1], 0xaa);
  EXPECT_EQ(f[7 * 512 - 1], 7);
}

TEST_F(BlockTest, WriteToReadOnlyDriveFails) {
  open_device(true);
  header(kBlkTypeOut, 0);
  auto [len, st] = run({{kHdr, 16, false}, {kData, 512, false}, {kStatus, 1, true}});
  EXPECT_EQ(st, kBlkStatusIoErr);
  EXPECT_EQ(len, 1u);
  EXPECT_EQ(file_bytes()[0], 1);
  EXPECT_EQ(dev_->counters().errors, 1u);
}

TEST_F(BlockTest, FlushAndGetId) {
  open_device(false, "drive-with-a-very-long-name-indeed");
  header(kBlkTypeFlush, 0);
  auto [flen, fst] = run({{kHdr, 16, false}, {kStatus, 1, true}});
  EXPECT_EQ(fst, kBlkStatusOk);
  EXPECT_EQ(flen, 1u);

  header(kBlkTypeGetId, 0);
  auto [ilen, ist] = run({{kHdr, 16, false}, {kData, 20, true}, {kStatus, 1, true}});
  EXPECT_EQ(ist, kBlkStatusOk);
  EXPECT_EQ(ilen, 21u);
  auto id = virtio::testing::read_bytes(mem_, kData, 20);
  EXPECT_EQ(std::string(id.begin(), id.end()), "drive-with-a-very-lo");
}

TEST_F(BlockTest, ShortIdIsNulPadded) {
  open_device(true, "rootfs");
  virtio::testing::write_bytes(mem_, kData, std::vector<uint8_t>(20, 0xee));
  header(kBlkTypeGetId, 0);
  auto [len, st] = run({{kHdr, 16, false}, {kData, 20, true}, {kStatus, 1, true}});
  EXPECT_EQ(st, kBlkStatusOk);
  auto id = virtio::testing::read_bytes(mem_, kData, 20);
  EXPECT_EQ(std::string(reinterpret_cast<char*>(id.data())), "rootfs");
  EXPECT_EQ(id[19], 0);
}

TEST_F(BlockTest, UnsupportedType) {
  open_device(false);
  header(11, 0);  // DISCARD, not offered
  auto [len, st] = run({{kHdr, 16, false}, {kStatus, 1, true}});
  EXPECT_EQ(st, kBlkStatusUnsupp);
  EXPECT_EQ(len, 1u);
}

TEST_F(BlockTest, OutOfRangeRequests) {
  open_device(false);
  struct Case { uint32_t type; uint64_t sector; uint32_t len; };
  for (Case c : {Case{kBlkTypeIn, 8, 512}, Case{kBlkTypeIn, 7, 1024}, Case{kBlkTypeIn, UINT64_MAX, 512},
                 Case{kBlkTypeIn, UINT64_MAX / 512 + 1, 512}, Case{kBlkTypeIn, 0, 100},
                 Case{kBlkTypeOut, 8, 512}, Case{kBlkTypeOut, 0, 513}}) {
    header(c.type, c.sector);
    bool out = c.type == kBlkTypeOut;
    auto [len, st] = run({{kHdr, 16, false}, {kData, c.len, !out}, {kStatus, 1, true}});
    EXPECT_EQ(st, kBlkStatusIoErr) << c.sector << " " << c.len;
    EXPECT_EQ(len, 1u);
  }
  EXPECT_EQ(file_bytes()[0], 1);
}

TEST_F(BlockTest, WrongDirectionBuffers) {
  open_device(false);
  header(kBlkTypeIn, 0);  // IN whose data buffer is device-readable
  auto [l1, s1] = run({{kHdr, 16, false}, {kData, 512, false}, {kStatus, 1, true}});
  EXPECT_EQ(s1, kBlkStatusIoErr);
  header(kBlkTypeOut, 0);  // OUT whose data buffer is device-writable
  auto [l2, s2] = run({{kHdr, 16, false}, {kData, 512, true}, {kStatus, 1, true}});
  EXPECT_EQ(s2, kBlkStatusIoErr);
  EXPECT_EQ(file_bytes()[0], 1);
}

TEST_F(BlockTest, ShortHeader) {
  open_device(true);
  header(kBlkTypeIn, 0);
  auto [len, st] = run({{kHdr, 8, false}, {kStatus, 1, true}});
  EXPECT_EQ(st, kBlkStatusIoErr);
}

TEST_F(BlockTest, NoStatusByteIsDroppedWithLengthZero) {
  open_device(true);
  header(kBlkTypeIn, 0);
  vq_.add_chain({{kHdr, 16, false}});
  ASSERT_TRUE(dev_->process_queue(0).ok());
  EXPECT_EQ(vq_.used_idx(), 1);
  EXPECT_EQ(vq_.used_elem(0).second, 0u);
  EXPECT_EQ(dev_->counters().errors, 1u);
}

TEST_F(BlockTest, MalformedChainDoesNotStopTheQueue) {
  open_device(true);
  vq_.set_desc(0, kHdr, 16, virtio::kDescFlagNext, 0);  // loop
  vq_.publish(0);
  header(kBlkTypeIn, 0);
  vq_.set_desc(1, kHdr, 16, virtio::kDescFlagNext, 2);
  vq_.set_desc(2, kStatus, 1, virtio::kDescFlagWrite, 0);
  vq_.publish(1);
  // A descriptor pointing outside RAM.
  vq_.set_desc(3, 0xfffffff0, 16, 0, 0);
  vq_.publish(3);
  ASSERT_TRUE(dev_->process_queue(0).ok());
  EXPECT_EQ(vq_.used_idx(), 3);
  EXPECT_EQ(vq_.used_elem(0).second, 0u);
  EXPECT_EQ(vq_.used_elem(1), (std::pair<uint32_t, uint32_t>{1, 1}));
  EXPECT_EQ(vq_.used_elem(2).second, 0u);
  EXPECT_EQ(dev_->counters().errors, 2u);
}

TEST_F(BlockTest, CorruptAvailRingIsFatal) {
  open_device(true);
  vq_.set_avail_idx(100);
  EXPECT_FALSE(dev_->process_queue(0).ok());
}

TEST_F(BlockTest, ThroughTheMmioTransport) {
  auto d = BlockDevice::open({path_, true, "rootfs", {}, {}});
  ASSERT_TRUE(d.ok());
  int irqs = 0;
  virtio::VirtioMmioTransport t(mem_, *d, [&] { ++irqs; });
  auto wr = [&](uint64_t off, uint32_t v) {
    uint8_t b[4];
    std::memcpy(b, &v, 4);
    t.mmio_write(off, b);
  };
  auto rd = [&](uint64_t off) {
    uint8_t b[4];
    t.mmio_read(off, b);
    uint32_t v;
    std::memcpy(&v, b, 4);
    return v;
  };
  EXPECT_EQ(rd(virtio::mmio::kDeviceId), virtio::kDeviceIdBlock);
  wr(virtio::mmio::kStatus, 1);
  wr(virtio::mmio::kStatus, 3);
  wr(virtio::mmio::kDeviceFeaturesSel, 0);
  uint32_t lo = rd(virtio::mmio::kDeviceFeatures);
  EXPECT_TRUE(lo & (1u << kBlkFeatureRo));
  wr(virtio::mmio::kDriverFeaturesSel, 0);
  wr(virtio::mmio::kDriverFeatures, lo);
  wr(virtio::mmio::kDriverFeaturesSel, 1);
  wr(virtio::mmio::kDriverFeatures, 1);
  wr(virtio::mmio::kStatus, 11);
  ASSERT_EQ(rd(virtio::mmio::kStatus), 11u);
  uint8_t cap[8];
  t.mmio_read(virtio::mmio::kConfig, cap);
  EXPECT_EQ(cap[0], kSectors);
  wr(virtio::mmio::kQueueSel, 0);
  EXPECT_EQ(rd(virtio::mmio::kQueueNumMax), 256u);
  wr(virtio::mmio::kQueueNum, vq_.size());
  wr(virtio::mmio::kQueueDescLow, static_cast<uint32_t>(vq_.desc().value()));
  wr(virtio::mmio::kQueueDriverLow, static_cast<uint32_t>(vq_.avail().value()));
  wr(virtio::mmio::kQueueDeviceLow, static_cast<uint32_t>(vq_.used().value()));
  wr(virtio::mmio::kQueueReady, 1);
  wr(virtio::mmio::kStatus, 15);
  ASSERT_TRUE(t.activated());

  // One IN request through an indirect table.
  header(kBlkTypeIn, 1);
  VirtqBuilder::write_desc_at(mem_, 0x40000, kHdr, 16, virtio::kDescFlagNext, 1);
  VirtqBuilder::write_desc_at(mem_, 0x40010, kData, 512, virtio::kDescFlagNext | virtio::kDescFlagWrite, 2);
  VirtqBuilder::write_desc_at(mem_, 0x40020, kStatus, 1, virtio::kDescFlagWrite, 0);
  vq_.set_desc(0, 0x40000, 48, virtio::kDescFlagIndirect, 0);
  vq_.publish(0);
  wr(virtio::mmio::kQueueNotify, 0);
  EXPECT_EQ(vq_.used_idx(), 1);
  EXPECT_EQ(vq_.used_elem(0).second, 513u);
  EXPECT_EQ(*mem_.read_obj<uint8_t>(GuestAddress(kData)), 2);
  EXPECT_EQ(irqs, 1);
  EXPECT_EQ(rd(virtio::mmio::kInterruptStatus), 1u);
}

}  // namespace
}  // namespace kiln::vmm::devices
