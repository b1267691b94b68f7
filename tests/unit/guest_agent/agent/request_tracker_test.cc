// RequestTracker: the request id found in a head (and the heads that give none), and which
// request the command's output belongs to as requests start, are answered and overlap.
#include "guest-agent/agent/request_tracker.h"

#include <gtest/gtest.h>

#include <string>

namespace kiln::agent {
namespace {

TEST(RequestTracker, RequestIdComesFromACompleteHead) {
  EXPECT_EQ(RequestTracker::request_id_in_head("POST /event-invoke HTTP/1.1\r\nHost: x\r\n"
                                               "X-Kiln-Request-Id: 1f0c-aa\r\nContent-Length: 2\r\n\r\n{}"),
            "1f0c-aa");
  EXPECT_EQ(RequestTracker::request_id_in_head("GET /a?b=c HTTP/1.0\r\nx-kiln-request-id:\t r2 \r\n\r\n"), "r2");
  // Not a head of a request: no blank line yet, a body, a response, a lower-case method.
  EXPECT_EQ(RequestTracker::request_id_in_head("GET / HTTP/1.1\r\nX-Kiln-Request-Id: r\r\n"), "");
  EXPECT_EQ(RequestTracker::request_id_in_head("{\"X-Kiln-Request-Id: r\"}\r\n\r\n"), "");
  EXPECT_EQ(RequestTracker::request_id_in_head("HTTP/1.1 200 OK\r\nX-Kiln-Request-Id: r\r\n\r\n"), "");
  EXPECT_EQ(RequestTracker::request_id_in_head("get / HTTP/1.1\r\nX-Kiln-Request-Id: r\r\n\r\n"), "");
  // Missing, repeated, empty, too long, or with a space or a control byte in it.
  EXPECT_EQ(RequestTracker::request_id_in_head("GET / HTTP/1.1\r\nX-Scf-Request-Id: r\r\n\r\n"), "");
  EXPECT_EQ(RequestTracker::request_id_in_head("GET / HTTP/1.1\r\nX-Kiln-Request-Id: a\r\nX-Kiln-Request-Id: b\r\n\r\n"),
            "");
  EXPECT_EQ(RequestTracker::request_id_in_head("GET / HTTP/1.1\r\nX-Kiln-Request-Id: \r\n\r\n"), "");
  EXPECT_EQ(RequestTracker::request_id_in_head("GET / HTTP/1.1\r\nX-Kiln-Request-Id: " +
                                               std::string(RequestTracker::kMaxId + 1, 'r') + "\r\n\r\n"),
            "");
  EXPECT_EQ(RequestTracker::request_id_in_head("GET / HTTP/1.1\r\nX-Kiln-Request-Id: a b\r\n\r\n"), "");
  EXPECT_EQ(RequestTracker::request_id_in_head(std::string("GET / HTTP/1.1\r\nX-Kiln-Request-Id: a\x01\r\n\r\n")), "");
  // A header line in the body does not count.
  EXPECT_EQ(RequestTracker::request_id_in_head("POST / HTTP/1.1\r\nA: b\r\n\r\nX-Kiln-Request-Id: r\r\n\r\n"), "");
}

TEST(RequestTracker, OutputBelongsToTheRequestUntilTheNextOneStarts) {
  RequestTracker t;
  EXPECT_EQ(t.current(), "");  // output before any request (the server starting)
  t.started(1, "a");
  EXPECT_EQ(t.current(), "a");
  t.answered(1);
  EXPECT_EQ(t.current(), "a");  // output that trails its answer
  t.started(1, "b");  // the next request on the same kept connection
  EXPECT_EQ(t.current(), "b");
  t.answered(1);
  t.closed(1);
  EXPECT_EQ(t.current(), "b");
  t.started(2, "c");  // on a new connection
  EXPECT_EQ(t.current(), "c");
  t.closed(2);  // the host gave up on it before an answer
  EXPECT_EQ(t.current(), "c");
  t.started(3, "");  // a head without an id: its output is no one's
  EXPECT_EQ(t.current(), "");
}

TEST(RequestTracker, OverlappingRequestsLeaveOutputUntagged) {
  RequestTracker t;
  t.started(1, "a");
  t.started(2, "b");  // concurrency above 1
  EXPECT_EQ(t.current(), "");
  t.answered(1);
  EXPECT_EQ(t.current(), "");  // b is the only one waiting, but a's trailing output may come now
  t.answered(2);
  EXPECT_EQ(t.current(), "");
  t.started(3, "c");  // alone again
  EXPECT_EQ(t.current(), "c");
  t.answered(3);
  EXPECT_EQ(t.current(), "c");
}

}  // namespace
}  // namespace kiln::agent
