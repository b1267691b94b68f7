// NbdServer: a blocking accept loop; shutdown(2) of the listener and of each connection is how the
// destructor wakes the threads blocked in accept and read.
#include "src/lazy/nbd_server.h"

#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace kiln::kilnd::lazy {

Result<std::unique_ptr<NbdServer>> NbdServer::start(const std::string& socket_path, std::shared_ptr<NbdExport> exp,
                                                    NbdServerOptions options) {
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (socket_path.size() + 1 > sizeof(addr.sun_path)) return make_error("nbd socket path too long: " + socket_path);
  std::memcpy(addr.sun_path, socket_path.c_str(), socket_path.size() + 1);
  UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!fd) return errno_error("nbd socket");
  struct stat st {};
  if (::lstat(socket_path.c_str(), &st) == 0) {
    if (!S_ISSOCK(st.st_mode)) return make_error("nbd socket path " + socket_path + " exists and is not a socket");
    ::unlink(socket_path.c_str());
  }
  const mode_t old_mask = ::umask(0177);
  const int bound = ::bind(fd.get(), reinterpret_cast<const sockaddr*>(&addr), sizeof addr);
  const int bind_errno = errno;
  ::umask(old_mask);
  if (bound != 0) return errno_error("nbd bind " + socket_path, bind_errno);
  if (::chmod(socket_path.c_str(), options.socket_mode) != 0) return errno_error("nbd chmod " + socket_path);
  if (::listen(fd.get(), 16) != 0) return errno_error("nbd listen " + socket_path);
  std::unique_ptr<NbdServer> server(new NbdServer(socket_path, std::move(fd), std::move(exp), std::move(options)));
  server->acceptor_ = std::thread([s = server.get()] { s->accept_loop(); });
  return server;
}

NbdServer::NbdServer(std::string path, UniqueFd listener, std::shared_ptr<NbdExport> exp, NbdServerOptions options)
    : path_(std::move(path)), listener_(std::move(listener)), exp_(std::move(exp)), options_(std::move(options)) {}

NbdServer::~NbdServer() {
  stopping_ = true;
  ::shutdown(listener_.get(), SHUT_RDWR);  // wakes accept(2)
  if (acceptor_.joinable()) acceptor_.join();
  std::list<Connection> all;  // spliced out: a finishing session takes mu_ to record its error
  {
    std::lock_guard lock(mu_);
    for (Connection& c : live_) ::shutdown(c.fd.get(), SHUT_RDWR);
    all.splice(all.begin(), live_);
  }
  for (Connection& c : all) c.thread.join();
  ::unlink(path_.c_str());
}

std::string NbdServer::last_error() const {
  std::lock_guard lock(mu_);
  return last_error_;
}

void NbdServer::reap_locked() {
  for (auto it = live_.begin(); it != live_.end();) {
    if (it->done) {  // set after its last use of mu_: joining cannot wait on us
      it->thread.join();
      it = live_.erase(it);
    } else {
      ++it;
    }
  }
}

void NbdServer::accept_loop() {
  while (!stopping_) {
    UniqueFd conn(::accept4(listener_.get(), nullptr, nullptr, SOCK_CLOEXEC));
    if (!conn) {
      if (errno == EINTR || errno == ECONNABORTED) continue;
      return;  // the listener was shut down (or broke: nothing more to accept)
    }
    std::lock_guard lock(mu_);
    reap_locked();
    if (stopping_ || live_.size() >= options_.max_connections) continue;  // closes conn
    ++connections_;
    Connection& c = live_.emplace_back();
    c.fd = std::move(conn);
    c.thread = std::thread([this, &c] {
      Status st = serve_nbd_session(c.fd.get(), *exp_, options_.export_name, options_.session);
      if (!st.ok()) {
        ++session_errors_;
        std::lock_guard error_lock(mu_);
        last_error_ = st.error().message;
      }
      ::shutdown(c.fd.get(),
                 SHUT_RDWR);  // the client sees the end now; the fd closes at the reap
      c.done = true;
    });
  }
}

}  // namespace kiln::kilnd::lazy
