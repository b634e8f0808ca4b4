#include "event_loop.h"

#include <sys/epoll.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>

EventLoop::EventLoop()
    : epfd_(epoll_create1(EPOLL_CLOEXEC)), timer_fd_(timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC)) {
  if (epfd_ < 0 || timer_fd_ < 0) {
    fprintf(stderr, "hako-agent: epoll_create1/timerfd_create: %s\n", strerror(errno));
    exit(1);
  }
  add(timer_fd_, EPOLLIN, [this](uint32_t) {
    uint64_t expirations;
    if (read(timer_fd_, &expirations, sizeof expirations) <= 0 || !timer_cb_) return;
    auto cb = std::move(timer_cb_);
    timer_cb_ = nullptr;
    cb();
  });
}

void EventLoop::set_timer(int64_t at_ns, std::function<void()> cb) {
  itimerspec its{};
  if (at_ns > 0) {
    its.it_value.tv_sec = at_ns / 1'000'000'000;
    its.it_value.tv_nsec = at_ns % 1'000'000'000;
  }
  timer_cb_ = at_ns > 0 ? std::move(cb) : nullptr;
  timerfd_settime(timer_fd_, TFD_TIMER_ABSTIME, &its, nullptr);
}

uint64_t EventLoop::add(int fd, uint32_t events, Callback cb) {
  uint64_t token = next_token_++;
  epoll_event ev{};
  ev.events = events;
  ev.data.u64 = token;
  if (epoll_ctl(epfd_, EPOLL_CTL_ADD, fd, &ev) < 0) {
    fprintf(stderr, "hako-agent: epoll_ctl(ADD, fd %d): %s\n", fd, strerror(errno));
    return 0;
  }
  watches_.emplace(token, Watch{fd, std::move(cb)});
  return token;
}

void EventLoop::modify(uint64_t token, uint32_t events) {
  auto it = watches_.find(token);
  if (it == watches_.end()) return;
  epoll_event ev{};
  ev.events = events;
  ev.data.u64 = token;
  if (epoll_ctl(epfd_, EPOLL_CTL_MOD, it->second.fd, &ev) < 0)
    fprintf(stderr, "hako-agent: epoll_ctl(MOD, fd %d): %s\n", it->second.fd, strerror(errno));
}

void EventLoop::remove(uint64_t token) {
  auto it = watches_.find(token);
  if (it == watches_.end()) return;
  epoll_ctl(epfd_, EPOLL_CTL_DEL, it->second.fd, nullptr);
  watches_.erase(it);
}

void EventLoop::run() {
  epoll_event events[64];
  for (;;) {
    int n = epoll_wait(epfd_, events, 64, -1);
    if (n < 0) {
      if (errno == EINTR) continue;
      fprintf(stderr, "hako-agent: epoll_wait: %s\n", strerror(errno));
      exit(1);
    }
    for (int i = 0; i < n; i++) {
      auto it = watches_.find(events[i].data.u64);
      if (it == watches_.end()) continue;
      Callback cb = it->second.cb;  // a copy: the callback may remove its own watch
      cb(events[i].events);
    }
  }
}
