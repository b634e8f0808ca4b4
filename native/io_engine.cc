#include "io_engine.h"

#include "js_values.h"
#include "kvm_error.h"

#include <fcntl.h>
#include <linux/falloc.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <cstring>

namespace hako {

namespace {

constexpr uint64_t kMaxSafeInteger = (uint64_t{1} << 53) - 1;
constexpr uint32_t kDefaultEntries = 128;
constexpr uint32_t kMaxEntries = 32768;  // the kernel's IORING_MAX_ENTRIES
constexpr uint32_t kMaxFiles = 0x10000;  // records name files with a u16

// The record layout of assembly/virtio/io.ts.
constexpr uint64_t kRecordSize = 32;
constexpr uint64_t kIovecSize = 16;
enum Op : uint8_t { kRead = 0, kWrite = 1, kFlush = 2, kDiscard = 3, kWriteZeroes = 4 };
constexpr uint8_t kFlagMayUnmap = 1;

template <typename T>
T load(const uint8_t* p) {
  T value;
  std::memcpy(&value, p, sizeof value);  // x86 is little-endian like the records; they may be unaligned
  return value;
}

}  // namespace

void IoEngine::RingExit::operator()(io_uring* ring) const {
  io_uring_queue_exit(ring);
  delete ring;
}

Napi::Function IoEngine::Define(Napi::Env env) {
  return DefineClass(env, "IoEngine",
                     {
                         InstanceMethod<&IoEngine::Attach>("attach"),
                         InstanceMethod<&IoEngine::Submit>("submit"),
                         InstanceMethod<&IoEngine::InFlight>("inFlight"),
                         InstanceMethod<&IoEngine::Drain>("drain"),
                         InstanceMethod<&IoEngine::Close>("close"),
                     });
}

IoEngine::IoEngine(const Napi::CallbackInfo& info) : Napi::ObjectWrap<IoEngine>(info), env_(info.Env()) {
  Napi::Env env = info.Env();
  uint64_t memoryBytes;
  if (info[0].IsArrayBuffer()) {
    Napi::ArrayBuffer buffer = info[0].As<Napi::ArrayBuffer>();
    base_ = static_cast<uint8_t*>(buffer.Data());
    bufferBytes_ = memoryBytes = buffer.ByteLength();
  } else {
    Napi::Function memoryClass =
        env.Global().Get("WebAssembly").As<Napi::Object>().Get("Memory").As<Napi::Function>();
    if (!info[0].IsObject() || !info[0].As<Napi::Object>().InstanceOf(memoryClass)) {
      throw Napi::TypeError::New(env, "memory must be a WebAssembly.Memory or an ArrayBuffer");
    }
    memoryIsWasm_ = true;
    Napi::ArrayBuffer buffer = info[0].As<Napi::Object>().Get("buffer").As<Napi::ArrayBuffer>();
    base_ = static_cast<uint8_t*>(buffer.Data());
    memoryBytes = buffer.ByteLength();
  }
  guestBytes_ = toUint(info[1], "guestBytes", kMaxSafeInteger);
  if (guestBytes_ > memoryBytes) {
    throw Napi::RangeError::New(env, "guestBytes " + hex(guestBytes_) + " is larger than the memory's " +
                                         hex(memoryBytes) + " bytes");
  }
  Napi::Function onComplete = toFunction(info[2], "onComplete");
  uint32_t entries = kDefaultEntries;
  if (!info[3].IsUndefined()) {
    Napi::Object options = toObject(info[3], "options");
    if (!options.Get("entries").IsUndefined()) {
      entries = static_cast<uint32_t>(fieldUint(options, "entries", "options", kMaxEntries));
      if (entries == 0) throw Napi::RangeError::New(env, "options.entries must be at least 1, got 0");
    }
  }

  auto* ring = new io_uring{};
  int err = io_uring_queue_init(entries, ring, 0);
  if (err < 0) {
    delete ring;
    throwKvmError(env, "io_uring_setup", -err,
                  "io_uring is unavailable; check /proc/sys/kernel/io_uring_disabled and any seccomp filter");
  }
  ring_.reset(ring);
  ringEntries_ = ring->sq.ring_entries;  // the kernel rounds up to a power of two

  eventfd_.reset(eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC));
  if (!eventfd_.valid()) throwKvmError(env, "eventfd", errno);
  err = io_uring_register_eventfd(ring, eventfd_.get());
  if (err < 0) throwKvmError(env, "io_uring_register(IORING_REGISTER_EVENTFD)", -err);
  poll_.emplace(env, eventfd_.get(), [this](uint64_t) { onEventfd(); });

  memory_ = Napi::Persistent(info[0].As<Napi::Object>());
  onComplete_ = Napi::Persistent(onComplete);
  asyncContext_.emplace(env, "hako:io");
  if (napi_add_env_cleanup_hook(env, onEnvCleanup, this) == napi_ok) cleanupHookAdded_ = true;
}

IoEngine::~IoEngine() { close(false); }

std::pair<uint8_t*, uint64_t> IoEngine::memoryView(Napi::Env env) {
  if (!memoryIsWasm_) return {base_, bufferBytes_};
  Napi::ArrayBuffer buffer = memory_.Value().Get("buffer").As<Napi::ArrayBuffer>();
  // V8 reserves a Wasm memory's whole address range up front and grows it in
  // place: requests in flight point into it. A move would be a V8 change to act on.
  if (buffer.Data() != base_) throw Napi::Error::New(env, "the Wasm memory moved while the I/O engine uses it");
  return {base_, buffer.ByteLength()};
}

Napi::Value IoEngine::Attach(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = static_cast<int>(toUint(info[0], "fd", INT_MAX));
  if (closed_) throwKvmError(env, "attach", EBADF, "the I/O engine is closed");
  if (fcntl(fd, F_GETFD) < 0) throwKvmError(env, "attach", errno, "fd " + std::to_string(fd));
  if (files_.size() >= kMaxFiles) throwKvmError(env, "attach", EMFILE, "at most 65536 files per I/O engine");
  files_.push_back(fd);
  return Napi::Number::New(env, static_cast<double>(files_.size() - 1));
}

int IoEngine::parseRecord(const uint8_t* record, uint8_t* base, uint64_t memoryBytes, Request& request) const {
  request.op = record[4];
  uint8_t flags = record[5];
  uint16_t file = load<uint16_t>(record + 6);
  request.offset = load<uint64_t>(record + 8);
  request.length = load<uint64_t>(record + 16);
  uint32_t iovPtr = load<uint32_t>(record + 24);
  uint32_t iovCount = load<uint32_t>(record + 28);

  if (request.op > kWriteZeroes || (flags & ~kFlagMayUnmap) != 0 || file >= files_.size()) return EINVAL;
  request.fd = files_[file];
  // Offsets are off_t to the kernel.
  if (request.offset > INT64_MAX || request.length > INT64_MAX - request.offset) return EINVAL;
  switch (request.op) {
    case kRead:
    case kWrite: {
      // The result is an i32 byte count.
      if (request.length > INT32_MAX || iovCount > IOV_MAX) return EINVAL;
      if (iovPtr > memoryBytes || iovCount * kIovecSize > memoryBytes - iovPtr) return EINVAL;
      request.iov.resize(iovCount);
      uint64_t total = 0;
      for (uint32_t i = 0; i < iovCount; i++) {
        const uint8_t* entry = base + iovPtr + i * kIovecSize;
        uint64_t gpa = load<uint64_t>(entry);
        uint64_t len = load<uint64_t>(entry + 8);
        if (gpa > guestBytes_ || len > guestBytes_ - gpa) return EINVAL;
        total += len;  // at most IOV_MAX * 2^53: no overflow
        request.iov[i] = {base + gpa, len};
      }
      if (total != request.length) return EINVAL;
      return 0;
    }
    case kFlush:
      return 0;
    case kDiscard:
      request.fallocateMode = FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE;
      return 0;
    default:  // kWriteZeroes
      request.fallocateMode =
          (flags & kFlagMayUnmap) != 0 ? FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE : FALLOC_FL_ZERO_RANGE;
      return 0;
  }
}

void IoEngine::Submit(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  uint64_t recordsPtr = toUint(info[0], "recordsPtr", UINT32_MAX);
  uint64_t count = toUint(info[1], "count", UINT32_MAX);
  if (closed_) throwKvmError(env, "submit", EBADF, "the I/O engine is closed");
  auto [base, memoryBytes] = memoryView(env);
  // Not a record's fault, so no -EINVAL result: there is no record to read an id from.
  if (recordsPtr > memoryBytes || count * kRecordSize > memoryBytes - recordsPtr) {
    std::string message = "submit: " + std::to_string(count) + " records at " + hex(recordsPtr) +
                          " are outside the memory's " + hex(memoryBytes) + " bytes";
    if (!memoryIsWasm_) message += " (an ArrayBuffer does not follow memory.grow(): pass the WebAssembly.Memory)";
    throw Napi::RangeError::New(env, message);
  }
  bool finishedNow = false;
  for (uint64_t i = 0; i < count; i++) {
    const uint8_t* record = base + recordsPtr + i * kRecordSize;
    auto request = std::make_unique<Request>();
    request->id = load<uint32_t>(record);
    int err = parseRecord(record, base, memoryBytes, *request);
    bool empty = request->length == 0 && request->op != kFlush;  // nothing to transfer (fallocate would say EINVAL)
    if (err != 0 || empty) {
      finish(request->id, -err);
      finishedNow = true;
    } else {
      queue_.push_back(std::move(request));
    }
  }
  pump();
  // Results are never delivered from inside submit(): the device model that
  // submitted is in the middle of its queue. The next loop iteration does it.
  if (finishedNow) wake();
  updateKeepAlive();
}

void IoEngine::pump() {
  io_uring* ring = ring_.get();
  // At most ringEntries_ in the kernel: the completion queue (twice as large) never overflows.
  while (!queue_.empty() && inKernel_ < ringEntries_) {
    io_uring_sqe* sqe = io_uring_get_sqe(ring);
    if (sqe == nullptr) break;
    Request* request = queue_.front().release();
    queue_.pop_front();
    prepare(sqe, request);
    inKernel_++;
  }
  if (io_uring_sq_ready(ring) == 0) return;
  // EAGAIN/EBUSY (the kernel is short of resources) or EINTR: the entries
  // stay in the submission queue; try again on the next loop iteration.
  if (io_uring_submit(ring) < 0) wake();
}

void IoEngine::prepare(io_uring_sqe* sqe, Request* request) {
  iovec* iov = request->iov.data() + request->iovFirst;
  unsigned iovCount = static_cast<unsigned>(request->iov.size() - request->iovFirst);
  uint64_t offset = request->offset + request->done;
  switch (request->op) {
    case kRead: io_uring_prep_readv(sqe, request->fd, iov, iovCount, offset); break;
    case kWrite: io_uring_prep_writev(sqe, request->fd, iov, iovCount, offset); break;
    case kFlush: io_uring_prep_fsync(sqe, request->fd, IORING_FSYNC_DATASYNC); break;
    default:
      io_uring_prep_fallocate(sqe, request->fd, request->fallocateMode, request->offset, request->length);
      break;
  }
  io_uring_sqe_set_data(sqe, request);
}

void IoEngine::reap() {
  io_uring_cqe* cqe;
  while (io_uring_peek_cqe(ring_.get(), &cqe) == 0) {
    std::unique_ptr<Request> request(static_cast<Request*>(io_uring_cqe_get_data(cqe)));
    int result = cqe->res;
    io_uring_cqe_seen(ring_.get(), cqe);
    inKernel_--;
    complete(std::move(request), result);
  }
}

void IoEngine::complete(std::unique_ptr<Request> request, int result) {
  if (result == -EINTR) {
    queue_.push_front(std::move(request));
    return;
  }
  if (result < 0) return finish(request->id, result);
  if (request->op != kRead && request->op != kWrite) return finish(request->id, 0);
  auto transferred = static_cast<uint64_t>(result);
  // Zero bytes: end of file on a read (the image shrank), no progress on a write.
  if (transferred == 0 || transferred > request->length - request->done) return finish(request->id, -EIO);
  request->done += transferred;
  if (request->done == request->length) return finish(request->id, static_cast<int32_t>(request->length));
  // A short transfer (a signal, a huge request, a file system's choice): go on
  // from where it stopped, ahead of requests not started yet.
  while (transferred > 0) {
    iovec& first = request->iov[request->iovFirst];
    if (first.iov_len <= transferred) {
      transferred -= first.iov_len;
      request->iovFirst++;
    } else {
      first.iov_base = static_cast<uint8_t*>(first.iov_base) + transferred;
      first.iov_len -= transferred;
      transferred = 0;
    }
  }
  queue_.push_front(std::move(request));
}

void IoEngine::finish(uint32_t id, int32_t result) {
  doneIds_.push_back(id);
  doneResults_.push_back(result);
}

void IoEngine::deliver() {
  if (doneIds_.empty()) return;
  Napi::Env env = env_;
  Napi::HandleScope scope(env);
  size_t count = doneIds_.size();
  Napi::Uint32Array ids = Napi::Uint32Array::New(env, count);
  Napi::Int32Array results = Napi::Int32Array::New(env, count);
  std::memcpy(ids.Data(), doneIds_.data(), count * sizeof(uint32_t));
  std::memcpy(results.Data(), doneResults_.data(), count * sizeof(int32_t));
  doneIds_.clear();
  doneResults_.clear();
  delivering_++;
  std::optional<Napi::Error> thrown;
  try {
    onComplete_.MakeCallback(Value(), {ids, results}, *asyncContext_);
  } catch (const Napi::Error& e) {
    thrown = e;
  }
  delivering_--;
  if (closed_) releaseJs();
  // A throwing onComplete is a bug of the host code: report it like any uncaught exception.
  if (thrown) napi_fatal_exception(env, thrown->Value());
}

void IoEngine::waitAll(bool deliverResults) {
  for (;;) {
    while (inKernel_ > 0 || !queue_.empty()) {
      pump();
      // EINTR and friends: look again; guest memory must not go while the kernel may write it.
      io_uring_submit_and_wait(ring_.get(), 1);
      reap();
    }
    // onComplete may submit more (the device takes the next requests off its queue): wait for those too.
    if (!deliverResults || doneIds_.empty()) return;
    deliver();
  }
}

void IoEngine::updateKeepAlive() {
  bool busy = !closed_ && inFlight() > 0;
  if (busy == keptAlive_) return;
  keptAlive_ = busy;
  if (poll_) poll_->keepAlive(busy);
  // The JS object (and through it guest memory) must not be collected while the kernel may write into it.
  if (busy) {
    Ref();
  } else {
    Unref();
  }
}

void IoEngine::wake() {
  uint64_t one = 1;
  // Cannot fail short of a counter at 2^64 - 2, which the poll resets first.
  (void)!write(eventfd_.get(), &one, sizeof one);
}

void IoEngine::onEventfd() {
  if (closed_) return;
  reap();
  pump();
  deliver();
  if (!closed_) updateKeepAlive();
}

uint32_t IoEngine::inFlight() const {
  return static_cast<uint32_t>(queue_.size() + inKernel_ + doneIds_.size());
}

Napi::Value IoEngine::InFlight(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), inFlight());
}

void IoEngine::Drain(const Napi::CallbackInfo&) {
  if (closed_) return;
  waitAll(true);
  if (!closed_) updateKeepAlive();
}

void IoEngine::Close(const Napi::CallbackInfo&) { close(true); }

void IoEngine::close(bool deliverResults) {
  if (closed_) return;
  if (ring_) waitAll(deliverResults);
  if (closed_) return;  // onComplete closed the engine meanwhile
  // Nothing is in the kernel any more: now the ring, and then guest memory, may go.
  doneIds_.clear();  // results not delivered (env teardown, finalizer) are dropped
  doneResults_.clear();
  updateKeepAlive();
  closed_ = true;
  if (cleanupHookAdded_) {
    napi_remove_env_cleanup_hook(env_, onEnvCleanup, this);
    cleanupHookAdded_ = false;
  }
  if (poll_) poll_->close();
  ring_.reset();
  eventfd_.reset();
  files_.clear();
  releaseJs();
}

void IoEngine::releaseJs() {
  if (delivering_ > 0) return;
  onComplete_.Reset();
  asyncContext_.reset();
  memory_.Reset();
}

void IoEngine::onEnvCleanup(void* engine) {
  auto* self = static_cast<IoEngine*>(engine);
  self->cleanupHookAdded_ = false;
  // No JS may run any more: wait for the kernel, drop the results.
  self->close(false);
}

}  // namespace hako
