// Percent-encoding for the URLs kiln builds (the kiln CLI's paths and queries, the registry
// client's token requests): any text goes in as one path segment or query value (RFC 3986 §2.1, §2.3);
// decoding for the URIs kiln reads (kiln-vmm's NBD drive URIs).
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace kiln {

// Every byte but the unreserved ones (A-Z a-z 0-9 - . _ ~) as %XX, so "bad/name" stays one
// segment ("bad%2Fname") and the server sees the text as it was.
std::string percent_encode(std::string_view text);

// The inverse: every %XX (hex, either case) becomes its byte; nullopt for a '%' not followed by
// two hex digits. '+' stays '+' (form encoding is not URI encoding).
std::optional<std::string> percent_decode(std::string_view text);

}  // namespace kiln
