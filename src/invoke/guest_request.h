// The HTTP requests kilnd sends into an instance: event invocations as the SCF custom-image
// contract's POST /event-invoke with request metadata in headers, and web invocations
// forwarded with their method, path, query, headers and body (hop-by-hop headers dropped).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "src/invoke/invoker.h"

namespace kiln::kilnd::invoke {

struct RequestMeta {
  std::string request_id;
  std::string function;
  std::uint64_t version = 1;
  std::uint32_t memory_mib = 128;
  std::uint64_t timeout_ms = 3000;
  std::uint64_t deadline_ms = 0;  // wall-clock ms since the epoch
};

// Headers set on every guest request (both SCF's and kiln's names).
void add_meta_headers(GuestRequest& req, const RequestMeta& meta);

GuestRequest make_event_request(const RequestMeta& meta, std::string event, std::string_view content_type);

// `path` is what follows /v1/functions/{name}/http (always starts with '/'); `raw_query` is
// the undecoded query string (may be empty).
GuestRequest make_web_request(const RequestMeta& meta, const http::request<http::string_body>& incoming,
                              std::string_view path, std::string_view raw_query);

// The guest's answer, cleaned for the client (hop-by-hop headers dropped).
http::response<http::string_body> forward_response(const GuestResponse& guest, unsigned version);

bool is_hop_by_hop(std::string_view header_name);

// A new request id (UUID v4 text).
std::string new_request_id();

}  // namespace kiln::kilnd::invoke
