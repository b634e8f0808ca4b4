// Moving bytes between a socket and Wasm memory for vsock's host side: the
// device model (assembly/virtio/vsock/) passes an I/O vector array in Wasm
// memory, {u64 addr, u64 len} per entry, pointing into guest RAM or its own
// buffers; native re-checks every range against the memory and does one
// readv or sendmsg. Results are numbers, never exceptions, for the conditions
// a socket meets in normal life: bytes, 0 for EOF, or -errno (-EAGAIN,
// -EPIPE, -ECONNRESET, ...); a bad vector (outside the memory, more than
// 1024 entries, over 2^31 - 1 bytes) is -EFAULT or -EINVAL.
#pragma once

#include <napi.h>

namespace hako {

/** socketReadv(fd, memory: ArrayBuffer, iov, count): readv into memory. An empty vector is -EINVAL (0 means EOF). */
Napi::Value SocketReadv(const Napi::CallbackInfo& info);
/** socketWritev(fd, memory: ArrayBuffer, iov, count): sendmsg(MSG_NOSIGNAL) from memory; may be partial. */
Napi::Value SocketWritev(const Napi::CallbackInfo& info);

}  // namespace hako
