// Web invocations of a `lambda`-mode function (issue 18), as Lambda function URLs do them: the
// incoming request becomes an API Gateway HTTP API payload 2.0 event, and the function's result
// is mapped back to an HTTP answer. Pure: no I/O, the clock is a parameter.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "common/result.h"
#include "src/invoke/invoker.h"

namespace kiln::kilnd::invoke {

// Bounds on a function's structured result (hostile results are a 502, never a bad answer).
inline constexpr std::size_t kMaxResultHeaders = 100;  // headers + multiValueHeaders values + cookies
inline constexpr std::size_t kMaxResultHeaderBytes = 16 * 1024;  // their names and values together

struct WebEventContext {
  std::string request_id;
  std::string account_id;  // lambda_account(tenant)
  std::string api_id;  // the function's name (a function URL's id in Lambda)
  std::string source_ip;  // the client's address
  std::uint64_t time_ms = 0;  // wall clock, ms since the epoch
};

// The event, as JSON text: version "2.0", routeKey "$default", rawPath (`path`, undecoded),
// rawQueryString (`raw_query`), cookies (the Cookie headers split at ';', omitted when none),
// headers (names lower-cased, repeats comma-joined; Cookie, hop-by-hop and client-sent
// X-Scf-*/X-Kiln-* left out), queryStringParameters (decoded, repeats comma-joined, omitted when
// none), requestContext {accountId, apiId, domainName (the Host), domainPrefix, http {method,
// path, protocol, sourceIp, userAgent}, requestId, routeKey, stage "$default", time, timeEpoch},
// body and isBase64Encoded (base64 unless the content type is textual and the body UTF-8;
// no body when the request has none).
std::string make_apigw_event(const http::request<http::string_body>& incoming, std::string_view path,
                             std::string_view raw_query, const WebEventContext& context);

// The function's result as a function URL answers it: a JSON object with "statusCode" gives
// statusCode (100-599), headers, multiValueHeaders, cookies (Set-Cookie each), body (a string)
// and isBase64Encoded; any other JSON value, or an empty result, is 200 application/json with
// the result as the body. Errors (the caller answers 502 with the message): a result that is
// not JSON, a field of the wrong type, a status out of range, a header name or value that is not
// one (CR, LF, NUL), more than kMaxResultHeaders or kMaxResultHeaderBytes, a body that is not
// valid base64 while isBase64Encoded is true. Hop-by-hop headers of the result are dropped.
Result<http::response<http::string_body>> web_response_from_result(std::string_view result, unsigned version);

}  // namespace kiln::kilnd::invoke
