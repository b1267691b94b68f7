// The NBD wire format: the GO/INFO option's strict decoder, request and reply layouts, and the
// range check every read gets before it is served.
#include "src/lazy/nbd_protocol.h"

#include <gtest/gtest.h>

namespace kiln::kilnd::lazy::nbd {
namespace {

std::string go_data(std::string_view name, std::vector<uint16_t> infos) {
  std::string d;
  append_be32(d, static_cast<uint32_t>(name.size()));
  d += name;
  append_be16(d, static_cast<uint16_t>(infos.size()));
  for (uint16_t i : infos) append_be16(d, i);
  return d;
}

TEST(NbdProtocol, GreetingIsFixedNewstyleWithNoZeroes) {
  const std::string g = encode_greeting();
  ASSERT_EQ(g.size(), 18u);
  EXPECT_EQ(g.substr(0, 8), "NBDMAGIC");
  EXPECT_EQ(g.substr(8, 8), "IHAVEOPT");
  EXPECT_EQ(load_be16(g.data() + 16), kFlagFixedNewstyle | kFlagNoZeroes);
}

TEST(NbdProtocol, DecodesAGoRequest) {
  auto go = decode_go(go_data("rootfs", {kInfoBlockSize, kInfoExport}));
  ASSERT_TRUE(go.ok()) << go.error().message;
  EXPECT_EQ(go->name, "rootfs");
  EXPECT_EQ(go->info_requests, (std::vector<uint16_t>{kInfoBlockSize, kInfoExport}));
  auto empty = decode_go(go_data("", {}));
  ASSERT_TRUE(empty.ok());
  EXPECT_EQ(empty->name, "");
}

TEST(NbdProtocol, RefusesHostileGoRequests) {
  auto msg = [](std::string_view d) {
    auto r = decode_go(d);
    return r.ok() ? std::string("accepted") : r.error().message;
  };
  EXPECT_NE(msg("ab").find("no name length"), std::string::npos);
  std::string long_name;
  append_be32(long_name, 0xffffffffu);
  EXPECT_NE(msg(long_name).find("exceeds 4096"), std::string::npos);
  std::string past_end;
  append_be32(past_end, 10);
  past_end += "short";
  EXPECT_NE(msg(past_end).find("exceeds the option's data"), std::string::npos);
  std::string d = go_data("x", {});
  d[4 + 1 + 1] = 3;  // claims three info requests, carries none
  EXPECT_NE(msg(d).find("3 info requests need 6 bytes"), std::string::npos);
  EXPECT_NE(msg(go_data("x", {1}) + "zz").find("2 trailing bytes"), std::string::npos);
}

TEST(NbdProtocol, OptionHeaderNeedsItsMagic) {
  std::string h;
  append_be64(h, kOptionMagic);
  append_be32(h, kOptGo);
  append_be32(h, 12);
  auto ok = decode_option_header(h);
  ASSERT_TRUE(ok.ok());
  EXPECT_EQ(ok->option, kOptGo);
  EXPECT_EQ(ok->length, 12u);
  h[0] = 'X';
  auto bad = decode_option_header(h);
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.error().message.find("is not IHAVEOPT"), std::string::npos);
}

TEST(NbdProtocol, RequestAndReplyLayouts) {
  std::string r;
  append_be32(r, kRequestMagic);
  append_be16(r, 0);
  append_be16(r, kCmdRead);
  append_be64(r, 0x1122334455667788ull);
  append_be64(r, 4096);
  append_be32(r, 512);
  auto req = decode_request(r);
  ASSERT_TRUE(req.ok());
  EXPECT_EQ(req->type, kCmdRead);
  EXPECT_EQ(req->handle, 0x1122334455667788ull);
  EXPECT_EQ(req->offset, 4096u);
  EXPECT_EQ(req->length, 512u);
  r[3] = 0;
  EXPECT_FALSE(decode_request(r).ok());
  EXPECT_FALSE(decode_request(r.substr(1)).ok());

  const std::string reply = encode_simple_reply(kEio, 7);
  ASSERT_EQ(reply.size(), 16u);
  EXPECT_EQ(load_be32(reply.data()), kSimpleReplyMagic);
  EXPECT_EQ(load_be32(reply.data() + 4), kEio);
  EXPECT_EQ(load_be64(reply.data() + 8), 7u);
  EXPECT_EQ(encode_export_name_reply(1, 0, false).size(), 8u + 2 + 124);
  EXPECT_EQ(encode_export_name_reply(1, 0, true).size(), 10u);
}

TEST(NbdProtocol, ReadsOutsideTheExportAreInvalid) {
  auto read = [](uint64_t offset, uint32_t length) {
    return check_read(Request{0, kCmdRead, 1, offset, length}, 8192);
  };
  EXPECT_EQ(read(0, 8192), 0u);
  EXPECT_EQ(read(8191, 1), 0u);
  EXPECT_EQ(read(0, 0), kEinval);
  EXPECT_EQ(read(8192, 1), kEinval);
  EXPECT_EQ(read(4096, 4097), kEinval);
  EXPECT_EQ(read(~0ull, 2), kEinval);  // offset + length would wrap
  EXPECT_EQ(check_read(Request{0, kCmdRead, 1, 0, kMaxPayloadBytes + 1}, 1ull << 40), kEinval);
}

}  // namespace
}  // namespace kiln::kilnd::lazy::nbd
