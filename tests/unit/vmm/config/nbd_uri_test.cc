// NBD drive URIs: the nbd+unix form accepted, every other scheme and hostile text refused.
#include "vmm/config/nbd_uri.h"

#include <gtest/gtest.h>

#include <string>

#include "vmm/config/vm_config.h"

namespace kiln::vmm::config {
namespace {

TEST(NbdUri, RecognisesNbdSchemesOnly) {
  for (const char* s : {"nbd+unix:///?socket=/s", "nbd://h/x", "nbds://h", "nbds+unix:///", "nbd+vsock:///1"}) {
    EXPECT_TRUE(is_nbd_uri(s)) << s;
  }
  for (const char* s : {"/img.ext4", "nbd.img", "./nbd://x", "nbd", "http://x", "NBD://x", "nbd:x", "nbd1://x"}) {
    EXPECT_FALSE(is_nbd_uri(s)) << s;
  }
}

TEST(NbdUri, ParsesTheUnixForms) {
  auto a = parse_nbd_uri("nbd+unix:///?socket=/run/kiln/disk.sock");
  ASSERT_TRUE(a.ok()) << a.error().message;
  EXPECT_EQ(a->socket, "/run/kiln/disk.sock");
  EXPECT_EQ(a->export_name, "");
  auto b = parse_nbd_uri("nbd+unix:///");
  EXPECT_FALSE(b.ok());
  auto c = parse_nbd_uri("nbd+unix:///root%2Fv1?socket=%2Frun%2Fa%20b.sock");
  ASSERT_TRUE(c.ok()) << c.error().message;
  EXPECT_EQ(c->export_name, "root/v1");
  EXPECT_EQ(c->socket, "/run/a b.sock");
  auto d = parse_nbd_uri("nbd+unix:///disk?socket=rel.sock");
  ASSERT_TRUE(d.ok());
  EXPECT_EQ(d->export_name, "disk");
  EXPECT_EQ(d->socket, "rel.sock");
}

TEST(NbdUri, RefusesNetworkTlsAndHostileText) {
  struct Case {
    std::string uri;
    std::string why;
  };
  const std::string long_socket(108, 'a');
  const std::string long_name(4097, 'n');
  for (const Case& c : std::vector<Case>{
           {"nbd://example.com:10809/disk", "no network"},
           {"nbd+tcp://h/x", "no network"},
           {"nbd+vsock:///x?socket=/s", "no network"},
           {"nbds+unix:///?socket=/s", "TLS"},
           {"nbds://h/x", "TLS"},
           {"nbd+unix://host/?socket=/s", "host"},
           {"nbd+unix://user@/?socket=/s", "host"},
           {"nbd+unix:?socket=/s", "not an nbd URI"},
           {"nbd+unix:///x", "missing ?socket"},
           {"nbd+unix:///x?socket=", "empty"},
           {"nbd+unix:///x?socket=/a&socket=/b", "twice"},
           {"nbd+unix:///x?socket=/a&tls=require", "unsupported query parameter 'tls'"},
           {"nbd+unix:///x?tls-certificates=/etc", "unsupported query parameter"},
           {"nbd+unix:///x?socket", "unsupported query parameter"},
           {"nbd+unix:///x?socket=/a#frag", "fragment"},
           {"nbd+unix:///x?socket=/a%00b", "NUL"},
           {"nbd+unix:///x%00?socket=/a", "NUL"},
           {std::string("nbd+unix:///x?socket=/a\0b", 25), "NUL"},
           {"nbd+unix:///x?socket=/a%zz", "percent"},
           {"nbd+unix:///x%4?socket=/a", "percent"},
           {"nbd+unix:///x?socket=/" + long_socket, "longer than 107"},
           {"nbd+unix:///" + long_name + "?socket=/a", "longer than 4096"},
       }) {
    auto r = parse_nbd_uri(c.uri);
    ASSERT_FALSE(r.ok()) << c.uri;
    EXPECT_NE(r.error().message.find(c.why), std::string::npos) << c.uri << ": " << r.error().message;
  }
}

TEST(NbdUri, DriveChecksParseTheUriInsteadOfTouchingFiles) {
  Drive d;
  d.drive_id = "lazy";
  d.path_on_host = "nbd+unix:///?socket=/nonexistent/disk.sock";
  EXPECT_TRUE(check_drive_file(d).ok());
  d.path_on_host = "nbd://example.com/disk";
  auto st = check_drive_file(d);
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.error().message.find("no network"), std::string::npos);
}

}  // namespace
}  // namespace kiln::vmm::config
