#include "socket_io.h"

#include "js_values.h"

#include <sys/socket.h>
#include <sys/uio.h>

#include <cerrno>
#include <climits>
#include <cstdint>
#include <cstring>
#include <vector>

namespace hako {

namespace {

constexpr uint32_t kMaxIovecs = 1024;  // the kernel's UIO_MAXIOV
constexpr uint64_t kIovecSize = 16;

/** The checked vectors as host iovecs, or -errno. */
int gatherIovecs(uint8_t* base, uint64_t memoryBytes, uint64_t iovPtr, uint64_t count, std::vector<iovec>& out,
                 uint64_t& total) {
  if (count > kMaxIovecs) return -EINVAL;
  if (iovPtr > memoryBytes || count * kIovecSize > memoryBytes - iovPtr) return -EFAULT;
  out.resize(count);
  total = 0;
  for (uint64_t i = 0; i < count; i++) {
    uint64_t addr, len;
    std::memcpy(&addr, base + iovPtr + i * kIovecSize, sizeof addr);  // little-endian like Wasm; may be unaligned
    std::memcpy(&len, base + iovPtr + i * kIovecSize + 8, sizeof len);
    if (addr > memoryBytes || len > memoryBytes - addr) return -EFAULT;
    total += len;  // each len fits the memory (< 2^33), 1024 of them cannot overflow
    out[i] = {base + addr, len};
  }
  // The result is an i32 byte count.
  if (total > INT32_MAX) return -EINVAL;
  return 0;
}

struct Transfer {
  int fd;
  std::vector<iovec> iov;
  uint64_t total;
};

/** Reads the arguments; a negative errno when the vector is bad. */
int parse(const Napi::CallbackInfo& info, Transfer& transfer) {
  transfer.fd = static_cast<int>(toUint(info[0], "fd", INT_MAX));
  if (!info[1].IsArrayBuffer()) throw Napi::TypeError::New(info.Env(), "memory must be an ArrayBuffer (WebAssembly.Memory#buffer)");
  Napi::ArrayBuffer memory = info[1].As<Napi::ArrayBuffer>();
  uint64_t iovPtr = toUint(info[2], "iov", UINT32_MAX);
  uint64_t count = toUint(info[3], "count", UINT32_MAX);
  return gatherIovecs(static_cast<uint8_t*>(memory.Data()), memory.ByteLength(), iovPtr, count, transfer.iov,
                      transfer.total);
}

}  // namespace

Napi::Value SocketReadv(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Transfer t;
  int err = parse(info, t);
  if (err == 0 && t.total == 0) err = -EINVAL;
  if (err != 0) return Napi::Number::New(env, err);
  ssize_t n;
  do {
    n = readv(t.fd, t.iov.data(), static_cast<int>(t.iov.size()));
  } while (n < 0 && errno == EINTR);
  return Napi::Number::New(env, n < 0 ? -errno : static_cast<double>(n));
}

Napi::Value SocketWritev(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Transfer t;
  int err = parse(info, t);
  if (err != 0) return Napi::Number::New(env, err);
  if (t.total == 0) return Napi::Number::New(env, 0);
  msghdr msg{};
  msg.msg_iov = t.iov.data();
  msg.msg_iovlen = t.iov.size();
  ssize_t n;
  do {
    // MSG_NOSIGNAL: a peer that closed is -EPIPE here, not a SIGPIPE for the whole VMM.
    n = sendmsg(t.fd, &msg, MSG_NOSIGNAL | MSG_DONTWAIT);
  } while (n < 0 && errno == EINTR);
  return Napi::Number::New(env, n < 0 ? -errno : static_cast<double>(n));
}

}  // namespace hako
