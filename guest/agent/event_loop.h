// A single-threaded epoll loop. Watches are named by tokens rather than pointers, so an event that arrives for a
// watch removed earlier in the same batch (its owner already gone) is simply dropped.
#pragma once

#include <cstdint>
#include <functional>
#include <unordered_map>

class EventLoop {
 public:
  using Callback = std::function<void(uint32_t events)>;

  EventLoop();
  // Level-triggered watch of `fd` for `events` (EPOLLIN/EPOLLOUT; hangup and error are always reported). Returns a
  // token for modify/remove, or 0 if epoll refused the fd (logged).
  uint64_t add(int fd, uint32_t events, Callback cb);
  void modify(uint64_t token, uint32_t events);
  // Must be called before the fd is closed.
  void remove(uint64_t token);
  // Calls `cb` once at CLOCK_MONOTONIC time `at_ns` (replacing any earlier timer); 0 disarms.
  void set_timer(int64_t at_ns, std::function<void()> cb);
  // Dispatches events forever.
  [[noreturn]] void run();

 private:
  struct Watch {
    int fd;
    Callback cb;
  };
  int epfd_;
  int timer_fd_;
  std::function<void()> timer_cb_;
  uint64_t next_token_ = 1;
  std::unordered_map<uint64_t, Watch> watches_;
};
