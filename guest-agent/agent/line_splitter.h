// LineSplitter: turns a byte stream (a child's stdout or stderr) into lines without the
// newline; a line longer than the limit is emitted in limit-sized parts marked partial.
#pragma once

#include <cstddef>
#include <functional>
#include <string>
#include <string_view>

namespace kiln::agent {

inline constexpr std::size_t kMaxLogLine = 16 * 1024;

class LineSplitter {
 public:
  // on_line(data, partial): partial = the line continues in the next call.
  using Sink = std::function<void(std::string_view data, bool partial)>;
  LineSplitter(std::size_t max_line, Sink sink) : max_line_(max_line), sink_(std::move(sink)) {}

  void feed(std::string_view bytes);
  // End of stream: emits a trailing unterminated line, if any.
  void finish();

 private:
  std::size_t max_line_;
  Sink sink_;
  std::string pending_;
};

}  // namespace kiln::agent
