// virtio-blk over the NBD backend against a real nbdkit on a temp Unix socket: data lands as in the
// file, completions in any order, read-only servers, server errors and a killed server give IOERR
// (later requests fail at once), the loop stays free while a read is slow.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <string>
#include <thread>

#include "tests/support/nbdkit_server.h"
#include "tests/unit/vmm/virtio/virtq_builder.h"
#include "vmm/devices/block_device.h"
#include "vmm/devices/block_nbd_backend.h"
#include "vmm/devices/block_request.h"

namespace kiln::vmm::devices {
namespace {

using kiln::testing::NbdkitServer;
using virtio::testing::Buf;
using virtio::testing::VirtqBuilder;

constexpr uint64_t kSectors = 64;

uint64_t hdr_at(int i) { return 0x10000 + 0x100 * static_cast<uint64_t>(i); }
uint64_t data_at(int i) { return 0x20000 + 0x1000 * static_cast<uint64_t>(i); }
uint64_t status_at(int i) { return 0x40000 + static_cast<uint64_t>(i); }

class BlockNbdTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!kiln::testing::nbdkit_available()) GTEST_SKIP() << "nbdkit is not installed (Debian package nbdkit)";
    char tmpl[] = "/tmp/kiln-nbd-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    image_ = dir_ + "/disk.img";
    UniqueFd fd(::open(image_.c_str(), O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600));
    std::vector<uint8_t> content(kSectors * 512);
    for (size_t i = 0; i < content.size(); ++i) content[i] = static_cast<uint8_t>(i / 512 + 1);
    ASSERT_EQ(::write(fd.get(), content.data(), content.size()), static_cast<ssize_t>(content.size()));
    auto l = EventLoop::create();
    ASSERT_TRUE(l.ok());
    loop_ = std::move(*l);
  }
  void TearDown() override {
    dev_.reset();
    server_.reset();
    if (!dir_.empty()) std::filesystem::remove_all(dir_);
  }

  void serve(std::vector<std::string> args, bool server_ro = false) {
    auto s = NbdkitServer::start(dir_, args, server_ro);
    if (!s.ok()) FAIL() << s.error().message;
    server_ = std::move(*s);
  }
  // nbdkit's file plugin on the image, after `filter` (with its parameters) when given.
  void serve_file(std::vector<std::string> filter = {}, bool server_ro = false) {
    std::vector<std::string> args;
    if (!filter.empty()) args.push_back(filter[0]);
    args.push_back("file");
    args.push_back(image_);
    args.insert(args.end(), filter.begin() + (filter.empty() ? 0 : 1), filter.end());
    serve(args, server_ro);
  }
  void open_device(bool read_only = false) {
    ASSERT_TRUE(server_) << "no server";
    auto d = BlockDevice::open({server_->uri(), read_only, "lazy", {}, {}}, loop_.get());
    ASSERT_TRUE(d.ok()) << d.error().message;
    dev_ = *d;
    ASSERT_TRUE(dev_->activate(mem_, {vq_.queue(BlockDevice::kQueueSize)}, 0, irq_).ok());
  }

  // Publishes request i (its own header, data and status areas) without notifying.
  void add(int i, uint32_t type, uint64_t sector, uint32_t len) {
    uint8_t h[16] = {};
    std::memcpy(h, &type, 4);
    std::memcpy(h + 8, &sector, 8);
    virtio::testing::write_bytes(mem_, hdr_at(i), std::vector<uint8_t>(h, h + 16));
    virtio::testing::write_bytes(mem_, status_at(i), {0xff});
    std::vector<Buf> bufs{{hdr_at(i), 16, false}};
    if (len > 0) bufs.push_back({data_at(i), len, type == kBlkTypeIn || type == kBlkTypeGetId});
    bufs.push_back({status_at(i), 1, true});
    heads_.push_back(vq_.add_chain(bufs));
  }
  // Request i reads `len` bytes at `sector`; returns them once it completed with status OK.
  std::vector<uint8_t> read_ok(int i, uint64_t sector, uint32_t len) {
    add(i, kBlkTypeIn, sector, len);
    const uint16_t want = static_cast<uint16_t>(vq_.used_idx() + 1);
    EXPECT_TRUE(dev_->process_queue(0).ok());
    EXPECT_TRUE(run_until_used(want));
    EXPECT_EQ(status(i), kBlkStatusOk);
    EXPECT_EQ(vq_.used_elem(static_cast<uint16_t>(want - 1)).second, len + 1);
    return virtio::testing::read_bytes(mem_, data_at(i), len);
  }
  uint8_t status(int i) { return *mem_.read_obj<uint8_t>(GuestAddress(status_at(i))); }
  // Runs the loop until `n` used entries are there or 10 s passed.
  bool run_until_used(uint16_t n) {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (vq_.used_idx() < n) {
      if (std::chrono::steady_clock::now() > deadline) return false;
      if (!loop_->run_once(100).ok()) return false;
    }
    return true;
  }
  std::vector<uint8_t> file_bytes() {
    UniqueFd fd(::open(image_.c_str(), O_RDONLY | O_CLOEXEC));
    std::vector<uint8_t> b(kSectors * 512);
    EXPECT_EQ(::pread(fd.get(), b.data(), b.size(), 0), static_cast<ssize_t>(b.size()));
    return b;
  }
  uint64_t counter(const std::string& name) {
    for (const auto& [n, v] : dev_->extra_counters()) {
      if (n == name) return v;
    }
    ADD_FAILURE() << "no counter " << name;
    return 0;
  }

  std::string dir_, image_;
  std::unique_ptr<EventLoop> loop_;
  std::unique_ptr<NbdkitServer> server_;
  GuestMemory mem_ = virtio::testing::make_memory();
  VirtqBuilder vq_{mem_, 0x1000, 16};
  std::vector<uint16_t> heads_;
  int irqs_ = 0;
  virtio::Interrupt irq_{[this] { ++irqs_; }};
  std::shared_ptr<BlockDevice> dev_;
};

TEST_F(BlockNbdTest, ReadsAndWritesLandAsInTheFile) {
  serve_file();
  open_device();
  EXPECT_EQ(dev_->capacity_sectors(), kSectors);
  EXPECT_FALSE(dev_->device_features() & virtio::feature_bit(kBlkFeatureRo));

  auto data = read_ok(0, 2, 1024);
  EXPECT_EQ(data[0], 3);
  EXPECT_EQ(data[1023], 4);

  virtio::testing::write_bytes(mem_, data_at(1), std::vector<uint8_t>(512, 0xaa));
  add(1, kBlkTypeOut, 7, 512);
  add(2, kBlkTypeFlush, 0, 0);
  ASSERT_TRUE(dev_->process_queue(0).ok());
  ASSERT_TRUE(run_until_used(3));
  EXPECT_EQ(status(1), kBlkStatusOk);
  EXPECT_EQ(status(2), kBlkStatusOk);
  auto f = file_bytes();
  EXPECT_EQ(f[7 * 512], 0xaa);
  EXPECT_EQ(f[8 * 512 - 1], 0xaa);
  EXPECT_EQ(f[7 * 512 - 1], 7);
  EXPECT_EQ(f[8 * 512], 9);
  auto c = dev_->counters();
  EXPECT_EQ(c.bytes_to_guest, 1024u);
  EXPECT_EQ(c.bytes_from_guest, 512u);
  EXPECT_EQ(c.errors, 0u);
  EXPECT_EQ(dev_->in_flight(), 0u);
  EXPECT_GE(irqs_, 1);
}

TEST_F(BlockNbdTest, CompletionsInAnyOrder) {
  serve_file({"--filter=delay", "wdelay=1"});
  open_device();
  virtio::testing::write_bytes(mem_, data_at(0), std::vector<uint8_t>(512, 0x55));
  add(0, kBlkTypeOut, 10, 512);  // slow
  add(1, kBlkTypeIn, 3, 512);    // fast
  ASSERT_TRUE(dev_->process_queue(0).ok());
  ASSERT_TRUE(run_until_used(1));
  EXPECT_EQ(vq_.used_elem(0).first, heads_[1]);  // the read overtook the write
  EXPECT_EQ(status(1), kBlkStatusOk);
  EXPECT_EQ(*mem_.read_obj<uint8_t>(GuestAddress(data_at(1))), 4);
  EXPECT_EQ(dev_->in_flight(), 1u);
  ASSERT_TRUE(run_until_used(2));
  EXPECT_EQ(vq_.used_elem(1).first, heads_[0]);
  EXPECT_EQ(status(0), kBlkStatusOk);
  EXPECT_EQ(file_bytes()[10 * 512], 0x55);
}

TEST_F(BlockNbdTest, ReadOnlyServerMakesAReadOnlyDrive) {
  serve_file({}, /*server_ro=*/true);
  open_device(/*read_only=*/false);
  EXPECT_TRUE(dev_->read_only());
  EXPECT_TRUE(dev_->device_features() & virtio::feature_bit(kBlkFeatureRo));
  add(0, kBlkTypeOut, 0, 512);
  ASSERT_TRUE(dev_->process_queue(0).ok());
  EXPECT_EQ(vq_.used_idx(), 1);  // refused by the device, without a round trip
  EXPECT_EQ(status(0), kBlkStatusIoErr);
  EXPECT_EQ(file_bytes()[0], 1);
}

TEST_F(BlockNbdTest, ReadOnlyDriveOnAWritableServer) {
  serve_file();
  open_device(/*read_only=*/true);
  add(0, kBlkTypeOut, 0, 512);
  ASSERT_TRUE(dev_->process_queue(0).ok());
  EXPECT_EQ(status(0), kBlkStatusIoErr);
  EXPECT_EQ(file_bytes()[0], 1);
}

TEST_F(BlockNbdTest, ServerErrorsBecomeIoErr) {
  serve_file({"--filter=error", "error-pread=EIO", "error-pread-rate=1"});
  open_device();
  add(0, kBlkTypeIn, 0, 512);
  add(1, kBlkTypeIn, 1, 512);
  ASSERT_TRUE(dev_->process_queue(0).ok());
  ASSERT_TRUE(run_until_used(2));
  EXPECT_EQ(status(0), kBlkStatusIoErr);
  EXPECT_EQ(status(1), kBlkStatusIoErr);
  EXPECT_EQ(vq_.used_elem(0).second, 1u);
  EXPECT_EQ(dev_->counters().errors, 2u);
  EXPECT_EQ(counter("nbd_errors"), 2u);
  EXPECT_EQ(counter("nbd_disconnected"), 0u);
  // Writes still work on that server.
  add(2, kBlkTypeOut, 0, 512);
  ASSERT_TRUE(dev_->process_queue(0).ok());
  ASSERT_TRUE(run_until_used(3));
  EXPECT_EQ(status(2), kBlkStatusOk);
}

TEST_F(BlockNbdTest, KilledServerFailsInFlightAndLaterRequests) {
  serve_file({"--filter=delay", "rdelay=30"});
  open_device();
  add(0, kBlkTypeIn, 0, 512);
  ASSERT_TRUE(dev_->process_queue(0).ok());
  ASSERT_TRUE(loop_->run_once(0).ok());
  EXPECT_EQ(dev_->in_flight(), 1u);
  server_->kill();
  ASSERT_TRUE(run_until_used(1));
  EXPECT_EQ(status(0), kBlkStatusIoErr);
  EXPECT_EQ(counter("nbd_disconnected"), 1u);
  // Fails at once, without the loop.
  add(1, kBlkTypeIn, 0, 512);
  add(2, kBlkTypeFlush, 0, 0);
  ASSERT_TRUE(dev_->process_queue(0).ok());
  EXPECT_EQ(vq_.used_idx(), 3);
  EXPECT_EQ(status(1), kBlkStatusIoErr);
  EXPECT_EQ(status(2), kBlkStatusIoErr);
  EXPECT_EQ(dev_->in_flight(), 0u);
  EXPECT_EQ(dev_->counters().errors, 3u);
}

TEST_F(BlockNbdTest, UnansweredCommandEndsTheConnectionAtItsDeadline) {
  serve_file({"--filter=delay", "rdelay=60"});
  auto uri = config::parse_nbd_uri(server_->uri());
  ASSERT_TRUE(uri.ok());
  auto backend = NbdBlockBackend::connect(*uri, true, *loop_, std::chrono::seconds(10), std::chrono::milliseconds(300));
  ASSERT_TRUE(backend.ok()) << backend.error().message;
  auto d = BlockDevice::create({server_->uri(), true, "lazy", {}, {}}, std::move(*backend), loop_.get());
  ASSERT_TRUE(d.ok()) << d.error().message;
  dev_ = *d;
  ASSERT_TRUE(dev_->activate(mem_, {vq_.queue(BlockDevice::kQueueSize)}, 0, irq_).ok());
  add(0, kBlkTypeIn, 0, 512);
  ASSERT_TRUE(dev_->process_queue(0).ok());
  ASSERT_TRUE(run_until_used(1));  // well before the server's 60 s
  EXPECT_EQ(status(0), kBlkStatusIoErr);
  EXPECT_EQ(counter("nbd_disconnected"), 1u);
  EXPECT_EQ(dev_->in_flight(), 0u);
}

TEST_F(BlockNbdTest, SlowReadLeavesTheLoopToOtherDevices) {
  serve_file({"--filter=delay", "rdelay=30"});
  open_device();
  add(0, kBlkTypeIn, 0, 512);
  ASSERT_TRUE(dev_->process_queue(0).ok());
  int p[2];
  ASSERT_EQ(::pipe2(p, O_CLOEXEC | O_NONBLOCK), 0);
  UniqueFd rd(p[0]), wr(p[1]);
  bool other_served = false;
  ASSERT_TRUE(loop_->add(rd.get(), EPOLLIN, [&](uint32_t) { other_served = true; }).ok());
  ASSERT_EQ(::write(wr.get(), "x", 1), 1);
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  while (!other_served && std::chrono::steady_clock::now() < deadline) ASSERT_TRUE(loop_->run_once(100).ok());
  EXPECT_TRUE(other_served);
  EXPECT_EQ(vq_.used_idx(), 0);
  EXPECT_EQ(dev_->in_flight(), 1u);
  loop_->remove_if_present(rd.get());
}

TEST_F(BlockNbdTest, RequestsAboveTheServersMaximumAreSplit) {
  // The server advertises 4 KiB at most and refuses anything larger.
  serve_file({"--filter=blocksize-policy", "blocksize-maximum=4096", "blocksize-error-policy=error"});
  open_device();
  auto data = read_ok(0, 0, 8192);
  EXPECT_EQ(data[0], 1);
  EXPECT_EQ(data[4096], 9);
  EXPECT_EQ(data[8191], 16);
  virtio::testing::write_bytes(mem_, data_at(1), std::vector<uint8_t>(12288, 0x77));
  add(1, kBlkTypeOut, 20, 12288);
  ASSERT_TRUE(dev_->process_queue(0).ok());
  ASSERT_TRUE(run_until_used(2));
  EXPECT_EQ(status(1), kBlkStatusOk);
  auto f = file_bytes();
  EXPECT_EQ(f[20 * 512], 0x77);
  EXPECT_EQ(f[44 * 512 - 1], 0x77);
  EXPECT_EQ(f[44 * 512], 45);
  EXPECT_EQ(counter("nbd_errors"), 0u);
}

TEST_F(BlockNbdTest, RateLimiterHoldsRequestsForTokens) {
  serve_file();
  rate_limiter::Nanos now = 1'000'000'000;
  BlockDeviceConfig config{server_->uri(), true, "lazy", {}, [&now] { return now; }};
  config.limit.ops = rate_limiter::TokenBucketConfig{1, 0, 100};  // one request per 100 ms
  auto d = BlockDevice::open(config, loop_.get());
  ASSERT_TRUE(d.ok()) << d.error().message;
  dev_ = *d;
  ASSERT_TRUE(dev_->activate(mem_, {vq_.queue(BlockDevice::kQueueSize)}, 0, irq_).ok());
  add(0, kBlkTypeIn, 1, 512);
  add(1, kBlkTypeIn, 2, 512);
  ASSERT_TRUE(dev_->process_queue(0).ok());
  ASSERT_TRUE(run_until_used(1));
  EXPECT_EQ(dev_->in_flight(), 0u);  // the second waits in the ring, not at the server
  EXPECT_EQ(status(1), 0xff);
  now += 200'000'000;  // the bucket refills; the device's wakeup timer serves the ring again
  ASSERT_TRUE(run_until_used(2));
  EXPECT_EQ(status(1), kBlkStatusOk);
  EXPECT_EQ(*mem_.read_obj<uint8_t>(GuestAddress(data_at(1))), 3);
}

TEST_F(BlockNbdTest, ResetWhileInFlightDropsTheResult) {
  serve_file({"--filter=delay", "rdelay=200ms"});
  open_device();
  virtio::testing::write_bytes(mem_, data_at(0), std::vector<uint8_t>(512, 0xee));
  add(0, kBlkTypeIn, 2, 512);
  ASSERT_TRUE(dev_->process_queue(0).ok());
  EXPECT_EQ(dev_->in_flight(), 1u);
  dev_->reset();  // the driver may reuse the buffers from now on
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (dev_->in_flight() != 0 && std::chrono::steady_clock::now() < deadline) ASSERT_TRUE(loop_->run_once(100).ok());
  EXPECT_EQ(dev_->in_flight(), 0u);
  EXPECT_EQ(vq_.used_idx(), 0);
  EXPECT_EQ(status(0), 0xff);
  EXPECT_EQ(*mem_.read_obj<uint8_t>(GuestAddress(data_at(0))), 0xee);
}

TEST_F(BlockNbdTest, QuiesceWaitsForInFlightRequestsWithADeadline) {
  serve_file({"--filter=delay", "rdelay=30"});
  open_device();
  std::thread loop_thread([this] { (void)loop_->run(); });
  add(0, kBlkTypeIn, 0, 512);
  loop_->post([this] { (void)dev_->process_queue(0); });
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  while (dev_->in_flight() == 0 && std::chrono::steady_clock::now() < deadline) std::this_thread::yield();
  auto st = dev_->quiesce(std::chrono::milliseconds(200));
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.error().message.find("1 request(s) still in flight"), std::string::npos) << st.error().message;
  // While quiesced, a kick pops nothing.
  add(1, kBlkTypeGetId, 0, 20);
  loop_->post([this] { (void)dev_->process_queue(0); });
  server_->kill();  // the slow read fails; nothing is left in flight
  EXPECT_TRUE(dev_->quiesce(std::chrono::seconds(10)).ok());
  EXPECT_EQ(vq_.used_idx(), 1);
  dev_->resume_requests();
  loop_->post([this] { loop_->stop(); });
  loop_thread.join();
  EXPECT_EQ(vq_.used_idx(), 2);  // the GET_ID after the resume
}

TEST_F(BlockNbdTest, HostileOrUnreachableUrisAreRefused) {
  for (const char* uri : {"nbd://example.com:10809/disk", "nbds+unix:///?socket=/x", "nbd+vsock:///?socket=/x",
                          "nbd+unix://host/?socket=/x", "nbd+unix:///?socket=/x&tls=require", "nbd+unix:///disk"}) {
    auto d = BlockDevice::open({uri, true, "x", {}, {}}, loop_.get());
    ASSERT_FALSE(d.ok()) << uri;
    EXPECT_NE(d.error().message.find("NBD drive URI"), std::string::npos) << d.error().message;
  }
  auto missing = BlockDevice::open({"nbd+unix:///?socket=" + dir_ + "/none.sock", true, "x", {}, {}}, loop_.get());
  EXPECT_FALSE(missing.ok());
  EXPECT_FALSE(BlockDevice::open({"nbd+unix:///?socket=/x", true, "x", {}, {}}, nullptr).ok());
}

TEST_F(BlockNbdTest, ServerThatNeverAnswersTimesOut) {
  // A listening socket nobody accepts on: connect succeeds, the handshake never comes.
  std::string path = dir_ + "/mute.sock";
  UniqueFd s(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  sockaddr_un a{};
  a.sun_family = AF_UNIX;
  std::strncpy(a.sun_path, path.c_str(), sizeof a.sun_path - 1);
  ASSERT_EQ(::bind(s.get(), reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
  ASSERT_EQ(::listen(s.get(), 4), 0);
  auto b = NbdBlockBackend::connect({path, ""}, true, *loop_, std::chrono::milliseconds(200));
  ASSERT_FALSE(b.ok());
  EXPECT_NE(b.error().message.find("did not complete the handshake"), std::string::npos) << b.error().message;
}

TEST_F(BlockNbdTest, ExportNameAndMemoryPlugin) {
  serve({"memory", "1M"});
  auto d =
      BlockDevice::open({"nbd+unix:///some%20export?socket=" + server_->socket(), false, "x", {}, {}}, loop_.get());
  ASSERT_TRUE(d.ok()) << d.error().message;  // nbdkit's memory plugin serves any export name
  EXPECT_EQ((*d)->capacity_sectors(), 2048u);
}

}  // namespace
}  // namespace kiln::vmm::devices
