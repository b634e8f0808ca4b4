// ttRPC server (containerd's framing): accepts connections, splits them into frames, decodes ttrpc.Request and hands
// (service, method, payload) to a dispatcher; answers come back through reply()/fail(), possibly much later (calls
// park while waiting for process output or exit), so one connection carries any number of concurrent calls.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>

#include "event_loop.h"

// gRPC status codes used by the agent (google.golang.org/grpc/codes).
namespace code {
constexpr int kOk = 0, kInvalidArgument = 3, kDeadlineExceeded = 4, kNotFound = 5, kAlreadyExists = 6,
              kResourceExhausted = 8, kFailedPrecondition = 9, kUnimplemented = 12, kInternal = 13;
}

// One call awaiting its answer: the connection (by id, so a call outliving its connection is harmless) and stream.
struct Call {
  uint64_t conn = 0;
  uint32_t stream = 0;
  int64_t deadline = 0;  // CLOCK_MONOTONIC nanoseconds from the request's timeout_nano; 0: none
};

int64_t monotonic_ns();

class TtrpcServer {
 public:
  static constexpr uint32_t kMaxMessage = 4 << 20;  // containerd's limit for one frame's payload
  using Dispatch = std::function<void(Call, std::string_view service, std::string_view method, std::string_view payload)>;

  TtrpcServer(EventLoop& loop, Dispatch dispatch) : loop_(loop), dispatch_(std::move(dispatch)) {}
  // "vsock:PORT" (any CID) or "unix:PATH"; false with `error` set if the address is bad or the socket fails.
  bool listen(std::string_view address, std::string& error);

  void reply(Call call, const std::string& payload);
  void fail(Call call, int code, const std::string& message);
  // Whether the call's connection is still open (a parked call whose host went away should not consume data).
  bool alive(Call call) const { return conns_.count(call.conn) != 0; }

 private:
  struct Conn {
    int fd = -1;
    uint64_t token = 0;
    std::string in;          // received bytes not yet parsed
    std::string out;         // frames not yet written
    size_t out_sent = 0;     // bytes of `out` already written
    uint64_t discard = 0;    // payload bytes of an oversized frame still to skip
  };
  static constexpr size_t kMaxQueuedOutput = 16 << 20;  // stop reading requests while the host does not read answers

  void accept_ready();
  void conn_ready(uint64_t id, uint32_t events);
  void parse_frames(uint64_t id, Conn& c);
  void handle_request(uint64_t id, uint32_t stream, std::string_view message);
  void send(Call call, int code, const std::string& message, const std::string& payload);
  void flush(uint64_t id, Conn& c);
  void update_watch(Conn& c);
  void close_conn(uint64_t id);

  EventLoop& loop_;
  Dispatch dispatch_;
  int listen_fd_ = -1;
  uint64_t listen_token_ = 0;  // 0 while accepting is paused for lack of file descriptors
  uint64_t next_conn_ = 1;
  std::unordered_map<uint64_t, std::unique_ptr<Conn>> conns_;
};
