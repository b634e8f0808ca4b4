#include "file_lock.h"

#include "js_values.h"
#include "kvm_error.h"

#include <fcntl.h>

#include <cerrno>

namespace hako {

Napi::Value LockFile(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = static_cast<int>(toUint(info[0], "fd", 0x7fffffff));
  bool exclusive = toBool(info[1], "exclusive");
  // OFD locks (as QEMU uses for images) belong to the open file, not the
  // process: they are released when the VMM closes the image, and do not
  // vanish when some other fd of the same file is closed.
  struct flock lock{};
  lock.l_type = exclusive ? F_WRLCK : F_RDLCK;
  lock.l_whence = SEEK_SET;
  if (fcntl(fd, F_OFD_SETLK, &lock) == 0) return Napi::Boolean::New(env, true);
  if (errno == EAGAIN || errno == EACCES) return Napi::Boolean::New(env, false);
  throwKvmError(env, "fcntl(F_OFD_SETLK)", errno, "fd " + std::to_string(fd));
  return env.Undefined();
}

}  // namespace hako
