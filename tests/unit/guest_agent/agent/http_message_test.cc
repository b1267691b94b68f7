// HttpMessageReader: framing, limits and hostile heads.
#include "guest-agent/agent/http_message.h"

#include <gtest/gtest.h>

#include <algorithm>

namespace kiln::agent {
namespace {

HttpMessageReader::Limits small() { return {256, 8, 64}; }

TEST(HttpMessageReader, ReadsPipelinedRequestsInPieces) {
  HttpMessageReader r(small());
  std::string two = "POST /a HTTP/1.1\r\nContent-Length: 3\r\nX-Id: 7\r\n\r\nabcGET /b HTTP/1.1\r\n\r\n";
  for (char c : two.substr(0, 20)) {
    r.feed(std::string_view(&c, 1));
    ASSERT_EQ(r.poll(), HttpMessageReader::State::kNeedMore);
  }
  r.feed(two.substr(20));
  ASSERT_EQ(r.poll(), HttpMessageReader::State::kRequest);
  HttpRequest a = r.take();
  EXPECT_EQ(a.method, "POST");
  EXPECT_EQ(a.target, "/a");
  EXPECT_EQ(a.body, "abc");
  EXPECT_EQ(a.header("x-id"), "7");
  ASSERT_EQ(r.poll(), HttpMessageReader::State::kRequest);
  HttpRequest b = r.take();
  EXPECT_EQ(b.method, "GET");
  EXPECT_EQ(b.body, "");
  EXPECT_TRUE(b.keep_alive);
  EXPECT_EQ(r.poll(), HttpMessageReader::State::kNeedMore);
}

struct Bad {
  std::string bytes;
  int status;
};

TEST(HttpMessageReader, RefusesHostileHeads) {
  const Bad cases[] = {
      {"GET /x HTTP/1.1\r\n" + std::string(300, 'a') + "\r\n\r\n", 431},
      {std::string(300, 'a'), 431},  // no end of head within the limit
      {"GET /x HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n", 411},
      {"POST /x HTTP/1.1\r\nContent-Length: 65\r\n\r\n", 413},
      {"POST /x HTTP/1.1\r\nContent-Length: -1\r\n\r\n", 400},
      {"POST /x HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n", 400},
      {"POST /x HTTP/1.1\r\nContent-Length: 99999999999999999999999\r\n\r\n", 400},
      {"GET x HTTP/1.1\r\n\r\n", 400},
      {"GET /x HTTP/2\r\n\r\n", 400},
      {"GET /x HTTP/1.1\r\nBad Name: v\r\n\r\n", 400},
      {"GET /x HTTP/1.1\r\n folded\r\n\r\n", 400},
      {"GET /x HTTP/1.1\r\nA: b\x01c\r\n\r\n", 400},
      {"GET /x HTTP/1.1\r\nA:1\r\nB:1\r\nC:1\r\nD:1\r\nE:1\r\nF:1\r\nG:1\r\nH:1\r\nI:1\r\n\r\n", 431},
  };
  for (const auto& c : cases) {
    HttpMessageReader r(small());
    r.feed(c.bytes);
    EXPECT_EQ(r.poll(), HttpMessageReader::State::kError) << c.bytes;
    EXPECT_EQ(r.error_status(), c.status) << c.bytes << ": " << r.error_text();
  }
}

TEST(HttpMessageReader, OversizeBodyKeepsTheHead) {
  HttpMessageReader r(small());
  r.feed("POST /2018-06-01/runtime/invocation/a/response HTTP/1.1\r\nContent-Length: 100\r\n\r\n");
  ASSERT_EQ(r.poll(), HttpMessageReader::State::kError);
  EXPECT_TRUE(r.oversize_body());
  EXPECT_EQ(r.head_only().target, "/2018-06-01/runtime/invocation/a/response");
  r.feed(std::string(40, 'b'));  // part of the refused body
  r.skip_oversize_body();
  EXPECT_EQ(r.poll(), HttpMessageReader::State::kNeedMore);
  r.feed(std::string(60, 'b') + "GET /next HTTP/1.1\r\n\r\n");  // its rest, then the next request
  ASSERT_EQ(r.poll(), HttpMessageReader::State::kRequest);
  EXPECT_EQ(r.take().target, "/next");
}

TEST(HttpMessageReader, BufferIsBounded) {
  HttpMessageReader r(small());
  std::string big(10000, 'x');
  r.feed(big);
  r.feed(big);
  EXPECT_LE(r.buffered(), 256u + 64u + 4u);
  EXPECT_EQ(r.room(), 0u);
}

TEST(HttpMessageReader, SkipsARefusedBodyThatArrivesInPiecesLargerThanRoom) {
  HttpMessageReader r(small());
  r.feed("POST /r HTTP/1.1\r\nContent-Length: 1000\r\n\r\n");
  r.feed(std::string(r.room(), 'b'));  // the reader is full before it was polled
  EXPECT_EQ(r.room(), 0u);
  ASSERT_EQ(r.poll(), HttpMessageReader::State::kError);
  ASSERT_TRUE(r.oversize_body());
  r.skip_oversize_body();
  std::size_t sent = 256 + 64 + 4 - std::string("POST /r HTTP/1.1\r\nContent-Length: 1000\r\n\r\n").size();
  while (sent < 1000) {
    std::size_t n = std::min<std::size_t>(r.room(), 1000 - sent);
    ASSERT_GT(n, 0u);
    r.feed(std::string(n, 'b'));
    sent += n;
  }
  r.feed("GET /after HTTP/1.1\r\n\r\n");
  ASSERT_EQ(r.poll(), HttpMessageReader::State::kRequest);
  EXPECT_EQ(r.take().target, "/after");
}

TEST(HttpMessageReader, FormatsResponses) {
  EXPECT_EQ(format_http_response(202, {{"A", "b"}}, "ok"),
            "HTTP/1.1 202 Accepted\r\nA: b\r\nContent-Length: 2\r\n\r\nok");
}

}  // namespace
}  // namespace kiln::agent
