// Unix stream sockets for vsock's host side (host/vsock/): the VM listens on
// one path, accepts host clients, and connects to "<path>_<port>" for the
// guest. Every socket is non-blocking and close-on-exec; failures throw a
// KvmError naming the call, the errno and the path.
#pragma once

#include <napi.h>

namespace hako {

/**
 * unixListen(path): a listening socket bound to `path`. A socket file left
 * behind by a process that is gone is replaced; a path where something still
 * listens throws EADDRINUSE, one that exists and is not a socket EEXIST.
 */
Napi::Value UnixListen(const Napi::CallbackInfo& info);
/** unixAccept(fd): the next connection's fd, or null when none is waiting. */
Napi::Value UnixAccept(const Napi::CallbackInfo& info);
/** unixConnect(path): a connected socket's fd (a Unix connect completes at once or fails). */
Napi::Value UnixConnect(const Napi::CallbackInfo& info);
/** shutdownSocket(fd, how): shutdown(2) with 'read', 'write' or 'both'; a socket already disconnected is no error. */
Napi::Value ShutdownSocket(const Napi::CallbackInfo& info);
/** closeFd(fd): close(2). */
Napi::Value CloseFd(const Napi::CallbackInfo& info);

}  // namespace hako
