// Guest RAM as a copy-on-write clone of a file (a snapshot's or a template's
// memory): mapping it costs microseconds whatever the size, and VMs cloned
// from the same file share every page none of them wrote.
#pragma once

#include <napi.h>

namespace hako {

// JS export (see NativeAddon.mapMemoryFile in host/native.ts).
void MapMemoryFile(const Napi::CallbackInfo& info);

}  // namespace hako
