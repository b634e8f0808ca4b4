// getRandom(target, offset, length): bytes from the kernel's CSPRNG, for virtio-rng.
#pragma once

#include <napi.h>

namespace hako {

void GetRandom(const Napi::CallbackInfo& info);

}  // namespace hako
