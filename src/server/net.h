// The one place kilnd includes Boost.Asio/Beast (coroutines on). <utility> comes first because
// Boost 1.74's awaitable.hpp uses std::exchange without including it.
#pragma once

#include <string_view>
#include <utility>

#include <boost/asio.hpp>
#include <boost/beast.hpp>

namespace kiln::kilnd {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = boost::beast::http;
using tcp = boost::asio::ip::tcp;
using local = boost::asio::local::stream_protocol;

// Boost 1.74's beast::string_view is boost::string_view: conversions both ways.
inline std::string_view sv(boost::beast::string_view s) { return {s.data(), s.size()}; }
inline boost::beast::string_view bsv(std::string_view s) { return {s.data(), s.size()}; }

}  // namespace kiln::kilnd
