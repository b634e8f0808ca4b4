// Per-environment state of the addon (one per Node environment / worker).
#pragma once

#include <napi.h>

namespace hako {

struct AddonData {
  Napi::FunctionReference vcpuClass;
};

}  // namespace hako
