#include "ttrpc.h"

#include <linux/vm_sockets.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <ctime>

#include "proto.h"

namespace {

// Field numbers of containerd's ttrpc.Request / ttrpc.Response and google.rpc.Status (ttrpc's request.proto).
constexpr FieldSpec kRequestService{1, Kind::String, false, "ttrpc.Request.service"};
constexpr FieldSpec kRequestMethod{2, Kind::String, false, "ttrpc.Request.method"};
constexpr FieldSpec kRequestPayload{3, Kind::Bytes, false, "ttrpc.Request.payload"};
constexpr FieldSpec kRequestTimeout{4, Kind::Int64, false, "ttrpc.Request.timeout_nano"};
constexpr uint32_t kResponseStatus = 1, kResponsePayload = 2;
constexpr FieldSpec kStatusCode{1, Kind::Int32, false, "google.rpc.Status.code"};
constexpr FieldSpec kStatusMessage{2, Kind::String, false, "google.rpc.Status.message"};

constexpr size_t kHeaderSize = 10;
constexpr uint8_t kTypeRequest = 1, kTypeResponse = 2;

uint32_t be32(const char* p) {
  return uint32_t(uint8_t(p[0])) << 24 | uint32_t(uint8_t(p[1])) << 16 | uint32_t(uint8_t(p[2])) << 8 | uint8_t(p[3]);
}
void put_be32(std::string& s, uint32_t v) {
  s += char(v >> 24);
  s += char(v >> 16);
  s += char(v >> 8);
  s += char(v);
}

}  // namespace

int64_t monotonic_ns() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return int64_t(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec;
}

bool TtrpcServer::listen(std::string_view address, std::string& error) {
  int fd;
  if (address.starts_with("vsock:")) {
    std::string port_text(address.substr(6));
    char* end;
    unsigned long port = strtoul(port_text.c_str(), &end, 10);
    if (port_text.empty() || *end || port > UINT32_MAX) return error = "bad vsock port '" + port_text + "'", false;
    fd = socket(AF_VSOCK, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0) return error = std::string("socket(AF_VSOCK): ") + strerror(errno), false;
    sockaddr_vm sa{};
    sa.svm_family = AF_VSOCK;
    sa.svm_cid = VMADDR_CID_ANY;
    sa.svm_port = uint32_t(port);
    if (bind(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) < 0) {
      error = "bind(vsock port " + port_text + "): " + strerror(errno);
      close(fd);
      return false;
    }
  } else if (address.starts_with("unix:")) {
    std::string path(address.substr(5));
    sockaddr_un sa{};
    if (path.empty() || path.size() >= sizeof sa.sun_path) return error = "bad unix socket path '" + path + "'", false;
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0) return error = std::string("socket(AF_UNIX): ") + strerror(errno), false;
    sa.sun_family = AF_UNIX;
    memcpy(sa.sun_path, path.data(), path.size());
    unlink(path.c_str());  // a stale socket of an earlier run
    if (bind(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) < 0) {
      error = "bind(" + path + "): " + strerror(errno);
      close(fd);
      return false;
    }
  } else {
    return error = "listen address '" + std::string(address) + "' is neither vsock:PORT nor unix:PATH", false;
  }
  if (::listen(fd, 16) < 0) {
    error = std::string("listen: ") + strerror(errno);
    close(fd);
    return false;
  }
  listen_fd_ = fd;
  listen_token_ = loop_.add(fd, EPOLLIN, [this](uint32_t) { accept_ready(); });
  return true;
}

void TtrpcServer::accept_ready() {
  for (;;) {
    int fd = accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK);
    if (fd < 0) {
      if (errno == EMFILE || errno == ENFILE) {
        // The pending connection would be reported again at once: pause until a connection closes.
        fprintf(stderr, "hako-agent: accept: %s; not accepting until a connection closes\n", strerror(errno));
        loop_.remove(listen_token_);
        listen_token_ = 0;
      } else if (errno != EAGAIN && errno != EINTR && errno != ECONNABORTED) {
        fprintf(stderr, "hako-agent: accept: %s\n", strerror(errno));
      }
      return;
    }
    uint64_t id = next_conn_++;
    auto c = std::make_unique<Conn>();
    c->fd = fd;
    c->token = loop_.add(fd, EPOLLIN, [this, id](uint32_t events) { conn_ready(id, events); });
    if (!c->token) {
      close(fd);
      continue;
    }
    conns_.emplace(id, std::move(c));
  }
}

void TtrpcServer::conn_ready(uint64_t id, uint32_t events) {
  auto it = conns_.find(id);
  if (it == conns_.end()) return;
  Conn& c = *it->second;
  if (events & EPOLLOUT) {
    flush(id, c);
    if (!conns_.count(id)) return;
  }
  // A hangup is read (to see EOF) even while reading is paused for backlog, or it would be reported forever.
  bool hangup = events & (EPOLLHUP | EPOLLERR);
  if (!hangup && (!(events & EPOLLIN) || c.out.size() - c.out_sent > kMaxQueuedOutput)) return;
  char buf[65536];
  ssize_t n = read(c.fd, buf, sizeof buf);
  if (n < 0 && (errno == EAGAIN || errno == EINTR)) return;
  if (n <= 0) {
    close_conn(id);  // EOF or error: the host went away; its parked calls are answered into the void
    return;
  }
  c.in.append(buf, size_t(n));
  parse_frames(id, c);  // may close the connection
}

void TtrpcServer::parse_frames(uint64_t id, Conn& c) {
  size_t pos = 0;
  for (;;) {
    if (c.discard) {
      size_t skip = std::min<uint64_t>(c.discard, c.in.size() - pos);
      pos += skip;
      c.discard -= skip;
      if (c.discard) break;
    }
    if (c.in.size() - pos < kHeaderSize) break;
    const char* h = c.in.data() + pos;
    uint32_t length = be32(h), stream = be32(h + 4);
    uint8_t type = uint8_t(h[8]);
    if (length > kMaxMessage) {
      // Skip the payload and answer the call with an error rather than drop the connection (as containerd does).
      pos += kHeaderSize;
      c.discard = length;
      if (type == kTypeRequest)
        send(Call{id, stream}, code::kResourceExhausted,
             "message of " + std::to_string(length) + " bytes exceeds the limit of " + std::to_string(kMaxMessage), "");
      continue;
    }
    if (c.in.size() - pos - kHeaderSize < length) break;
    std::string message = c.in.substr(pos + kHeaderSize, length);
    pos += kHeaderSize + length;
    if (type != kTypeRequest) {
      fprintf(stderr, "hako-agent: ignoring a ttrpc frame of type %u (stream %u): only requests are served\n", type, stream);
      continue;
    }
    handle_request(id, stream, message);
    if (!conns_.count(id)) return;  // the connection failed while answering
  }
  c.in.erase(0, pos);
}

void TtrpcServer::handle_request(uint64_t id, uint32_t stream, std::string_view message) {
  Call call{id, stream};
  std::string service, method, payload;
  int64_t timeout = 0;
  DecodeError err;
  Reader r(message);
  Field f;
  bool ok = true;
  while (ok && r.next(f)) {
    if (f.number == kRequestService.number) ok = get<kRequestService>(f, service, err);
    else if (f.number == kRequestMethod.number) ok = get<kRequestMethod>(f, method, err);
    else if (f.number == kRequestPayload.number) ok = get<kRequestPayload>(f, payload, err);
    else if (f.number == kRequestTimeout.number) ok = get<kRequestTimeout>(f, timeout, err);
    // metadata (5) is not used.
  }
  if (ok && r.error()) {
    err.message = std::string("ttrpc.Request: ") + r.error();
    ok = false;
  }
  if (!ok) return fail(call, code::kInvalidArgument, err.message);
  if (timeout > 0) call.deadline = monotonic_ns() + std::min<int64_t>(timeout, INT64_MAX / 2);
  dispatch_(call, service, method, payload);
}

void TtrpcServer::reply(Call call, const std::string& payload) { send(call, code::kOk, "", payload); }

void TtrpcServer::fail(Call call, int status_code, const std::string& message) {
  fprintf(stderr, "hako-agent: call failed (code %d): %s\n", status_code, message.c_str());
  send(call, status_code, message, "");
}

void TtrpcServer::send(Call call, int status_code, const std::string& message, const std::string& payload) {
  auto it = conns_.find(call.conn);
  if (it == conns_.end()) return;
  Conn& c = *it->second;
  Writer status;
  put<kStatusCode>(status, int32_t(status_code));
  put<kStatusMessage>(status, message);
  Writer response;
  response.len_field(kResponseStatus, status.out);  // always present, code 0 on success, as containerd's server does
  if (!payload.empty()) response.len_field(kResponsePayload, payload);
  if (response.out.size() > kMaxMessage) {
    fprintf(stderr, "hako-agent: response of %zu bytes exceeds the ttrpc limit\n", response.out.size());
    return send(call, code::kResourceExhausted, "response exceeds the ttrpc message limit", "");
  }
  put_be32(c.out, uint32_t(response.out.size()));
  put_be32(c.out, call.stream);
  c.out += char(kTypeResponse);
  c.out += char(0);
  c.out += response.out;
  flush(call.conn, c);
}

void TtrpcServer::flush(uint64_t id, Conn& c) {
  while (c.out_sent < c.out.size()) {
    ssize_t n = write(c.fd, c.out.data() + c.out_sent, c.out.size() - c.out_sent);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && errno == EAGAIN) break;
    if (n < 0) {
      close_conn(id);
      return;
    }
    c.out_sent += size_t(n);
  }
  if (c.out_sent == c.out.size()) {
    c.out.clear();
    c.out_sent = 0;
  }
  update_watch(c);
}

void TtrpcServer::update_watch(Conn& c) {
  bool backlog = c.out_sent < c.out.size();
  uint32_t events = (backlog ? uint32_t(EPOLLOUT) : 0) | (c.out.size() - c.out_sent > kMaxQueuedOutput ? 0 : uint32_t(EPOLLIN));
  loop_.modify(c.token, events);
}

void TtrpcServer::close_conn(uint64_t id) {
  auto it = conns_.find(id);
  if (it == conns_.end()) return;
  loop_.remove(it->second->token);
  close(it->second->fd);
  conns_.erase(it);
  if (!listen_token_) listen_token_ = loop_.add(listen_fd_, EPOLLIN, [this](uint32_t) { accept_ready(); });
}
