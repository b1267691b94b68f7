// Fuzz target: the Runtime API as the function sees it. Bytes from a hostile runtime go through
// HttpMessageReader in fuzzer-chosen chunks; each complete request reaches RuntimeApiCore, with
// invocations submitted between them. Checks: the reader stays bounded, every answer is one of
// the documented statuses, and the core's single-invocation/single-poll invariants hold.
// Input: a chunk-size byte, a submit-pattern byte, then the bytes.
#include <cstdint>
#include <string>

#include "guest-agent/agent/http_message.h"
#include "guest-agent/agent/runtime_api.h"
#include "tests/fuzz/support/fuzz_input.h"

namespace kiln::fuzz {
inline bool documented(int status) {
  switch (status) {
    case 200: case 202: case 400: case 403: case 404: case 405: case 413: return true;
  }
  return false;
}

}  // namespace kiln::fuzz

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace kiln;
  using agent::HttpMessageReader;
  using fuzz::documented;
  fuzz::FuzzInput in(data, size);
  std::size_t chunk = in.u8() % 64 + 1;
  std::uint8_t pattern = in.u8();
  const HttpMessageReader::Limits limits{512, 16, 256};
  HttpMessageReader reader(limits);
  agent::RuntimeApiCore core("arn:aws:lambda:us-east-1:000000000000:function:f");
  std::uint64_t submitted = 0;
  while (!in.empty()) {
    reader.feed(in.text(chunk));
    KILN_FUZZ_CHECK(reader.buffered() <= limits.max_head + limits.max_body + 4);
    while (true) {
      auto state = reader.poll();
      if (state == HttpMessageReader::State::kNeedMore) break;
      agent::RuntimeApiCore::Outcome o;
      if (state == HttpMessageReader::State::kError) {
        KILN_FUZZ_CHECK(reader.error_status() >= 400 && reader.error_status() < 500);
        if (!reader.oversize_body()) return 0;
        o = core.handle_oversize(reader.head_only());
        KILN_FUZZ_CHECK(o.answer.status == 413 && !o.park);
        reader.skip_oversize_body();  // as the bridge does: the connection carries on
        continue;
      }
      bool was_parked = core.parked();
      o = core.handle(reader.take());
      KILN_FUZZ_CHECK(o.park || documented(o.answer.status));
      KILN_FUZZ_CHECK(!(o.park && was_parked));  // at most one parked poll
      if (o.result) KILN_FUZZ_CHECK(!o.result->id.empty());
      // Feed an invocation now and then (bit per request), as kilnd would.
      if ((pattern >> (submitted % 8)) & 1) {
        auto st = core.submit(agent::Invocation{"id-" + std::to_string(submitted), "{}", 1, "", "", ""});
        if (st.ok()) KILN_FUZZ_CHECK(core.busy());
      }
      ++submitted;
      if (auto a = core.dispatch()) KILN_FUZZ_CHECK(a->status == 200 && !core.parked());
    }
  }
  return 0;
}
