// lockFile(fd, exclusive): an open-file-description lock on a whole disk
// image, so two VMs cannot write one image (nor read one another writes).
#pragma once

#include <napi.h>

namespace hako {

/** Returns false when another open file description holds a conflicting lock. */
Napi::Value LockFile(const Napi::CallbackInfo& info);

}  // namespace hako
