// LineSplitter: line boundaries across chunks, CRLF, limit splitting, trailing data.
#include "guest-agent/agent/line_splitter.h"

#include <gtest/gtest.h>

#include <vector>

namespace kiln::agent {
namespace {

struct Line {
  std::string data;
  bool partial;
  bool operator==(const Line& o) const { return data == o.data && partial == o.partial; }
};

std::vector<Line> run(std::size_t max, std::vector<std::string> chunks, bool finish = true) {
  std::vector<Line> out;
  LineSplitter s(max, [&out](std::string_view d, bool p) { out.push_back({std::string(d), p}); });
  for (const auto& c : chunks) s.feed(c);
  if (finish) s.finish();
  return out;
}

TEST(LineSplitter, SplitsAcrossChunks) {
  EXPECT_EQ(run(100, {"he", "llo\nwor", "ld\n", "\n"}),
            (std::vector<Line>{{"hello", false}, {"world", false}, {"", false}}));
}

TEST(LineSplitter, CrLfAndTrailing) {
  EXPECT_EQ(run(100, {"a\r\nb"}), (std::vector<Line>{{"a", false}, {"b", false}}));
  EXPECT_EQ(run(100, {"tail"}, false), std::vector<Line>{});
}

TEST(LineSplitter, LongLinesSplitAtLimit) {
  EXPECT_EQ(run(4, {"abcdefghij\nxy\n"}),
            (std::vector<Line>{{"abcd", true}, {"efgh", true}, {"ij", false}, {"xy", false}}));
  // Exactly the limit is a whole line.
  EXPECT_EQ(run(4, {"abcd\n"}), (std::vector<Line>{{"abcd", false}}));
  // Split across chunk boundaries too.
  EXPECT_EQ(run(4, {"ab", "cdef", "g\n"}),
            (std::vector<Line>{{"abcd", true}, {"efg", false}}));
}

TEST(LineSplitter, BinaryBytesPassThrough) {
  auto out = run(100, {std::string("a\0b\n", 4)});
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].data, std::string("a\0b", 3));
}

}  // namespace
}  // namespace kiln::agent
