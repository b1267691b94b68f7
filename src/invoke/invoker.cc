// One invocation: lease (with deadline) -> kept or new stream -> write request -> read answer ->
// keep the stream if the server does -> release.
#include "src/invoke/invoker.h"

#include "src/invoke/response_reader.h"

namespace kiln::kilnd::invoke {
namespace {

using Clock = std::chrono::steady_clock;
using asio::use_awaitable;

double ms_between(Clock::time_point a, Clock::time_point b) {
  return std::chrono::duration<double, std::milli>(b - a).count();
}

std::string seconds_text(std::chrono::milliseconds d) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%.2f", static_cast<double>(d.count()) / 1000.0);
  return buf;
}

// A one-shot rendezvous between a callback and the coroutine, shared so that a callback
// arriving after the coroutine gave up touches nothing that is gone.
template <typename T>
struct Slot {
  explicit Slot(const asio::any_io_executor& ex) : timer(ex) {}
  std::optional<T> value;
  asio::steady_timer timer;
};

}  // namespace

const char* invoke_status_name(InvokeStatus s) {
  switch (s) {
    case InvokeStatus::kOk: return "ok";
    case InvokeStatus::kQueueFull: return "throttled";
    case InvokeStatus::kStartFailed: return "start_failed";
    case InvokeStatus::kTimeout: return "timeout";
    case InvokeStatus::kCrash: return "crash";
    case InvokeStatus::kResponseTooLarge: return "response_too_large";
    case InvokeStatus::kShuttingDown: return "shutting_down";
  }
  return "unknown";
}

asio::awaitable<InvokeResult> invoke(std::shared_ptr<pool::FunctionPool> pool, GuestRequest request,
                                     InvokeOptions options, InvokeHooks hooks) {
  auto ex = co_await asio::this_coro::executor;
  InvokeResult out;
  const auto start = Clock::now();
  // As in Lambda, a cold start's init does not count against the function's timeout: waiting
  // for a lease may take the pool's start allowance on top; the timeout runs from the lease.
  const auto lease_deadline = start + pool->settings().start_timeout + options.timeout;
  auto timeout_text = [&options] { return "Task timed out after " + seconds_text(options.timeout) + " seconds"; };

  // 1. A lease, or an error, or the deadline.
  auto lease_slot = std::make_shared<Slot<pool::AcquireResult>>(ex);
  lease_slot->timer.expires_at(lease_deadline);
  std::uint64_t waiter = pool->acquire([lease_slot](pool::AcquireResult r) {
    lease_slot->value = std::move(r);
    lease_slot->timer.cancel();
  });
  if (!lease_slot->value) {
    beast::error_code ec;
    co_await lease_slot->timer.async_wait(asio::redirect_error(use_awaitable, ec));
  }
  out.queued_ms = ms_between(start, Clock::now());
  if (!lease_slot->value) {
    pool->cancel(waiter);
    out.status = InvokeStatus::kTimeout;
    out.detail = "no instance became available within " +
                 seconds_text(std::chrono::duration_cast<std::chrono::milliseconds>(pool->settings().start_timeout + options.timeout)) +
                 " seconds (start allowance + timeout)";
    co_return out;
  }
  pool::AcquireResult acquired = std::move(*lease_slot->value);
  switch (acquired.error) {
    case pool::AcquireError::kNone: break;
    case pool::AcquireError::kQueueFull:
      out.status = InvokeStatus::kQueueFull;
      out.detail = acquired.message;
      co_return out;
    case pool::AcquireError::kStartFailed:
      out.status = InvokeStatus::kStartFailed;
      out.detail = acquired.message;
      co_return out;
    case pool::AcquireError::kShuttingDown:
      out.status = InvokeStatus::kShuttingDown;
      out.detail = acquired.message;
      co_return out;
  }
  pool::Lease lease = acquired.lease;
  out.instance_id = lease.instance->id;
  out.cold_start = lease.cold_start;
  out.init_duration_ms = lease.init_duration_ms;
  if (hooks.leased) hooks.leased(out.instance_id);
  const auto leased_at = Clock::now();
  const auto deadline = leased_at + options.timeout;
  pool::Outcome outcome = pool::Outcome::kOk;

  // 2. A stream to the instance: a kept-alive one if the instance has one, else a new one; a
  // kept-alive stream the server closed before this request could be answered (nothing came
  // back at all) is dropped and the request goes once more on a new stream.
  std::shared_ptr<pool::Instance> inst = lease.instance;
  for (int attempt = 0;; ++attempt) {
    std::optional<local::socket> kept = attempt == 0 ? inst->kept_streams.take(Clock::now()) : std::nullopt;
    const bool reused = kept.has_value();
    if (!reused) {
      auto conn_slot = std::make_shared<Slot<Result<local::socket>>>(ex);
      conn_slot->timer.expires_at(deadline);
      inst->vm->connect([conn_slot](Result<local::socket> s) {
        conn_slot->value.emplace(std::move(s));
        conn_slot->timer.cancel();
      });
      if (!conn_slot->value) {
        beast::error_code ec;
        co_await conn_slot->timer.async_wait(asio::redirect_error(use_awaitable, ec));
      }
      if (!conn_slot->value) {
        out.status = InvokeStatus::kTimeout;
        out.detail = timeout_text() + " (connecting to the instance)";
        outcome = pool::Outcome::kRecycle;
        break;
      }
      if (!conn_slot->value->ok()) {
        out.status = InvokeStatus::kCrash;
        out.detail = "cannot reach the function: " + conn_slot->value->error().message;
        if (!inst->end_reason.empty()) out.detail += "; " + inst->end_reason;
        outcome = pool::Outcome::kBroken;
        break;
      }
      kept.emplace(std::move(conn_slot->value->value()));
    }
    // 3. Request and answer, both bounded by the deadline.
    LocalStream stream(std::move(*kept));
    stream.expires_at(deadline);
    request.keep_alive(true);
    request.prepare_payload();
    beast::error_code ec;
    co_await http::async_write(stream, request, asio::redirect_error(use_awaitable, ec));
    http::response_parser<http::string_body> parser;
    parser.body_limit(options.max_response_bytes);
    ReadInfo read;
    if (!ec) ec = co_await read_response(stream, parser, &read);
    // Closed while idle: once more on a new stream, unless the instance ended meanwhile (its
    // function exited with this request in hand: a new stream cannot reach it, and the crash
    // should say why).
    if (reused && ec && ec != beast::error::timeout && !read.got_bytes && inst->state != pool::InstanceState::kStopping) {
      continue;
    }
    if (!ec) {
      out.response = parser.release();
      if (out.response.keep_alive() && read.unread == 0 && inst->state != pool::InstanceState::kStopping) {
        inst->kept_streams.give(stream.release_socket(), Clock::now(), pool->settings().concurrency);
      }
    } else if (ec == beast::error::timeout) {
      out.status = InvokeStatus::kTimeout;
      out.detail = timeout_text();
      outcome = pool::Outcome::kRecycle;
    } else if (ec == http::error::body_limit) {
      out.status = InvokeStatus::kResponseTooLarge;
      out.detail = "the function's response is larger than " + std::to_string(options.max_response_bytes) + " bytes";
      outcome = pool::Outcome::kRecycle;
    } else if (ec.category() == beast::error_code(http::error::bad_version).category() && ec != http::error::end_of_stream &&
               ec != http::error::partial_message) {
      out.status = InvokeStatus::kCrash;
      out.detail = "the function answered with invalid HTTP (" + ec.message() + ")";
      outcome = pool::Outcome::kRecycle;
    } else {
      out.status = InvokeStatus::kCrash;
      out.detail = "the function's server closed the connection without a complete response (" + ec.message() +
                   "): it crashed or exited";
      outcome = pool::Outcome::kBroken;
      if (!inst->end_reason.empty()) out.detail += "; " + inst->end_reason;
    }
    break;
  }
  out.duration_ms = ms_between(leased_at, Clock::now());
  out.max_memory_mib = inst->vm ? inst->vm->max_memory_mib() : 0;
  if (hooks.released) hooks.released(out.instance_id);
  pool->release(lease, outcome);
  co_return out;
}

}  // namespace kiln::kilnd::invoke
