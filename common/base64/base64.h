// Standard base64 (RFC 4648 section 4, with padding): Lambda's X-Amz-Log-Result, registry
// Basic credentials and Docker auth files.
#pragma once

#include <string>
#include <string_view>

#include "common/result.h"

namespace kiln::base64 {

// Inputs above this are refused by decode (1 MiB of text).
inline constexpr std::size_t kMaxDecodeInput = 1 << 20;

std::string encode(std::string_view bytes);

// Padded input only (a length that is a multiple of 4, at most kMaxDecodeInput): anything else,
// or a character outside the alphabet, is "malformed base64".
Result<std::string> decode(std::string_view text);

}  // namespace kiln::base64
