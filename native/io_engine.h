// The block I/O engine (IoEngine in host/native.ts): runs the I/O records the
// virtio-blk model writes into Wasm memory (assembly/virtio/io.ts) against the
// open image files, reading and writing guest RAM in place, and hands the
// results back to JS in batches.
//
// Why io_uring rather than a pool of threads doing preadv/pwritev: a batch of
// requests (everything one queue kick produced) costs one io_uring_enter, the
// kernel runs buffered I/O that hits the page cache inline and punts the rest
// to its own workers, and completions arrive on one eventfd in the JS thread's
// event loop. No thread of ours touches guest memory, nothing is copied, and
// there is no per-request wakeup or handoff to a thread.
#pragma once

#include "fd_watch.h"
#include "unique_fd.h"

#include <liburing.h>
#include <napi.h>
#include <sys/uio.h>

#include <cstdint>
#include <deque>
#include <memory>
#include <optional>
#include <vector>

namespace hako {

class IoEngine : public Napi::ObjectWrap<IoEngine> {
 public:
  static Napi::Function Define(Napi::Env env);

  explicit IoEngine(const Napi::CallbackInfo& info);
  /** The finalizer. It only runs while nothing is in flight (the engine holds itself alive meanwhile). */
  ~IoEngine() override;

 private:
  /** One record on its way: what is left to transfer, in host addresses. */
  struct Request {
    uint32_t id;
    uint8_t op;
    int fd;
    uint64_t offset;
    uint64_t length;
    int fallocateMode = 0;
    std::vector<iovec> iov;  // READ/WRITE: the part not transferred yet
    size_t iovFirst = 0;     // first iovec with bytes left
    uint64_t done = 0;       // bytes transferred so far
  };

  Napi::Value Attach(const Napi::CallbackInfo& info);
  void Submit(const Napi::CallbackInfo& info);
  Napi::Value InFlight(const Napi::CallbackInfo& info);
  void Drain(const Napi::CallbackInfo& info);
  void Close(const Napi::CallbackInfo& info);

  /** The Wasm memory as it is now: base and byte length (a WebAssembly.Memory's buffer changes when it grows). */
  std::pair<uint8_t*, uint64_t> memoryView(Napi::Env env);
  /** Checks one record and fills `request`, or returns the errno the record fails with. */
  int parseRecord(const uint8_t* record, uint8_t* base, uint64_t memoryBytes, Request& request) const;
  /** A CQE for `request`: finishes it, or queues what is left of a short transfer. */
  void complete(std::unique_ptr<Request> request, int result);
  /** Moves queued requests into the ring while it has room, and submits them. */
  void pump();
  void prepare(io_uring_sqe* sqe, Request* request);
  /** Consumes every CQE available; requests with bytes left go back to the queue. */
  void reap();
  /** A finished record's result: the byte count of a transfer, 0, or -errno. */
  void finish(uint32_t id, int32_t result);
  /** Calls onComplete with every finished result (on the JS thread, not inside submit()). */
  void deliver();
  /** Blocks until the kernel holds no request of ours; with `deliverResults`, hands every result to JS too. */
  void waitAll(bool deliverResults);
  /** While anything is in flight: keep the event loop and this object alive. */
  void updateKeepAlive();
  /** Drops the JS callback, unless onComplete is on the stack (it is then dropped when that returns). */
  void releaseJs();
  /** Wakes the completion poll without a CQE: finished-at-submit results and submission retries. */
  void wake();
  void onEventfd();
  uint32_t inFlight() const;
  void close(bool deliverResults);
  static void onEnvCleanup(void* engine);

  Napi::Env env_;
  Napi::ObjectReference memory_;  // the ArrayBuffer or WebAssembly.Memory: I/O writes into it
  bool memoryIsWasm_ = false;
  uint8_t* base_ = nullptr;
  uint64_t bufferBytes_ = 0;  // of an ArrayBuffer given directly
  uint64_t guestBytes_;
  Napi::FunctionReference onComplete_;
  std::optional<Napi::AsyncContext> asyncContext_;

  struct RingExit {
    void operator()(io_uring* ring) const;
  };
  std::unique_ptr<io_uring, RingExit> ring_;
  uint32_t ringEntries_ = 0;
  UniqueFd eventfd_;
  std::optional<EventfdPoll> poll_;
  std::vector<int> files_;

  std::deque<std::unique_ptr<Request>> queue_;  // accepted, not in the ring yet
  uint32_t inKernel_ = 0;                       // submitted, no CQE yet
  std::vector<uint32_t> doneIds_;               // finished, not delivered yet
  std::vector<int32_t> doneResults_;
  int delivering_ = 0;  // onComplete calls on the stack (close() or drain() may come from inside one)
  bool keptAlive_ = false;
  bool cleanupHookAdded_ = false;
  bool closed_ = false;
};

}  // namespace hako
