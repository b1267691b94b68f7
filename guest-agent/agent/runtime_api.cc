// RuntimeApiCore: routing of /2018-06-01/runtime/... and the answers chosen where the Runtime
// API leaves the behaviour open (see guest-agent/README.md, "Lambda mode").
#include "guest-agent/agent/runtime_api.h"

namespace kiln::agent {

namespace {

constexpr std::string_view kPrefix = "/2018-06-01/runtime/";
constexpr std::string_view kInvocation = "invocation/";

ApiAnswer json_answer(int status, std::string body) {
  return ApiAnswer{status, {{"Content-Type", "application/json"}}, std::move(body)};
}

ApiAnswer error_answer(int status, std::string_view type, std::string_view message) {
  return json_answer(status, RuntimeApiCore::error_json(type, message));
}

ApiAnswer accepted() { return json_answer(202, "{\"status\":\"OK\"}"); }

// Ids and messages here come from kilnd or from fixed text; still, never let a byte break JSON.
std::string json_text(std::string_view s) {
  std::string out;
  for (char c : s) {
    if (c == '"' || c == '\\') out += '\\';
    if (static_cast<unsigned char>(c) < 0x20) continue;
    out += c;
  }
  return out;
}

}  // namespace

std::string RuntimeApiCore::error_json(std::string_view type, std::string_view message) {
  return "{\"errorMessage\":\"" + json_text(message) + "\",\"errorType\":\"" + json_text(type) + "\"}";
}

Status RuntimeApiCore::submit(Invocation inv) {
  if (busy()) return make_error("an invocation is already in progress");
  if (inv.id.empty()) return make_error("invocation without an id");
  queued_ = std::move(inv);
  return ok_status();
}

std::optional<ApiAnswer> RuntimeApiCore::dispatch() {
  if (!parked_ || !queued_) return std::nullopt;
  parked_ = false;
  Invocation inv = std::move(*queued_);
  queued_.reset();
  outstanding_ = inv.id;
  return next_answer(inv);
}

void RuntimeApiCore::cancel(std::string_view id) {
  if (queued_ && queued_->id == id) queued_.reset();
  if (outstanding_ == id) {
    last_answered_ = outstanding_;
    outstanding_.clear();
  }
}

ApiAnswer RuntimeApiCore::next_answer(const Invocation& inv) {
  ApiAnswer a{200, {}, inv.payload};
  a.headers.emplace_back("Content-Type", "application/json");
  a.headers.emplace_back("Lambda-Runtime-Aws-Request-Id", inv.id);
  a.headers.emplace_back("Lambda-Runtime-Deadline-Ms", std::to_string(inv.deadline_ms));
  a.headers.emplace_back("Lambda-Runtime-Invoked-Function-Arn", function_arn_);
  if (!inv.trace_id.empty()) a.headers.emplace_back("Lambda-Runtime-Trace-Id", inv.trace_id);
  if (!inv.client_context.empty()) a.headers.emplace_back("Lambda-Runtime-Client-Context", inv.client_context);
  if (!inv.cognito_identity.empty()) a.headers.emplace_back("Lambda-Runtime-Cognito-Identity", inv.cognito_identity);
  return a;
}

RuntimeApiCore::Outcome RuntimeApiCore::answer_id(std::string_view id, bool is_error, const HttpRequest& req) {
  Outcome o;
  if (id.empty() || id != outstanding_) {
    o.answer = (!id.empty() && id == last_answered_)
                   ? error_answer(400, "InvalidStateTransition", "invocation already answered")
                   : error_answer(400, "InvalidRequestID", "no invocation with this id is in progress");
    return o;
  }
  InvocationResult r{std::string(id), is_error, {}, req.body};
  if (is_error) {
    auto type = req.header("Lambda-Runtime-Function-Error-Type");
    r.error_type = type && !type->empty() ? std::string(*type) : "Unhandled";
    if (r.body.empty()) r.body = error_json(r.error_type, "the runtime reported an error without a body");
  }
  last_answered_ = outstanding_;
  outstanding_.clear();
  o.answer = accepted();
  o.result = std::move(r);
  return o;
}

RuntimeApiCore::Outcome RuntimeApiCore::handle(const HttpRequest& req) {
  Outcome o;
  std::string_view target = req.target;
  if (auto q = target.find('?'); q != std::string_view::npos) target = target.substr(0, q);
  if (target.substr(0, kPrefix.size()) != kPrefix) {
    o.answer = error_answer(404, "NotFound", "only the Runtime API (/2018-06-01/runtime/) is served here");
    return o;
  }
  std::string_view rest = target.substr(kPrefix.size());
  auto method_is = [&req](std::string_view m) { return req.method == m; };
  if (rest == "invocation/next") {
    if (!method_is("GET")) {
      o.answer = error_answer(405, "MethodNotAllowed", "use GET");
      return o;
    }
    if (parked_ || !outstanding_.empty()) {
      // One poller at a time, and the outstanding invocation must be answered first: the state
      // stays as it was, so a runtime that retries after answering carries on.
      o.answer = error_answer(400, "InvalidStateTransition",
                              parked_ ? "a next call is already waiting" : "the current invocation has not been answered");
      return o;
    }
    o.first_next = !seen_next_;
    seen_next_ = true;
    parked_ = true;
    if (auto a = dispatch()) {
      o.answer = std::move(*a);
      return o;
    }
    o.park = true;
    return o;
  }
  if (rest == "init/error") {
    if (!method_is("POST")) {
      o.answer = error_answer(405, "MethodNotAllowed", "use POST");
      return o;
    }
    if (seen_next_) {
      o.answer = error_answer(403, "InvalidStateTransition", "init has already finished");
      return o;
    }
    o.answer = accepted();
    o.init_error = req.body.empty() ? error_json("Runtime.InitError", "no details") : req.body;
    return o;
  }
  if (rest.substr(0, kInvocation.size()) == kInvocation) {
    std::string_view tail = rest.substr(kInvocation.size());
    auto slash = tail.find('/');
    std::string_view id = tail.substr(0, slash);
    std::string_view what = slash == std::string_view::npos ? std::string_view() : tail.substr(slash + 1);
    if (what == "response" || what == "error") {
      if (!method_is("POST")) {
        o.answer = error_answer(405, "MethodNotAllowed", "use POST");
        return o;
      }
      return answer_id(id, what == "error", req);
    }
  }
  o.answer = error_answer(404, "NotFound", "no such Runtime API path");
  return o;
}

RuntimeApiCore::Outcome RuntimeApiCore::handle_oversize(const HttpRequest& head) {
  Outcome o;
  const std::string message = "Exceeded maximum allowed payload size (" + std::to_string(kMaxLambdaPayload) + " bytes).";
  o.answer = error_answer(413, "RequestEntityTooLarge", message);
  if (head.method != "POST") return o;  // routing a GET `next` here would park it
  HttpRequest empty = head;
  empty.body.clear();
  Outcome routed = handle(empty);
  if (routed.result) {
    // The invocation ends as a function error, as Lambda reports an oversize response.
    routed.result->function_error = true;
    routed.result->error_type = "Function.ResponseSizeTooLarge";
    routed.result->body = error_json("Function.ResponseSizeTooLarge", message);
    o.result = std::move(routed.result);
  }
  return o;
}

}  // namespace kiln::agent
