// Guest RAM as a copy-on-write clone of a file (a snapshot's or a template's
// memory): mapping it costs microseconds whatever the size, and VMs cloned
// from the same file share every page none of them wrote.
#pragma once

#include "unique_fd.h"

#include <napi.h>

#include <cstdint>
#include <string>

namespace hako {

/**
 * Opens `path` read-only for a private mapping of [offset, offset + size): a
 * regular file at least that long (a page past its end would raise SIGBUS when
 * touched), `offset` and `size` page-aligned, `size` > 0. Throws a KvmError
 * of `syscall` (EINVAL naming the sizes) or of open/fstat otherwise.
 */
UniqueFd openMemoryFile(Napi::Env env, const std::string& syscall, const std::string& path, uint64_t offset,
                        uint64_t size);

// JS export (see NativeAddon.mapMemoryFile in host/native.ts).
void MapMemoryFile(const Napi::CallbackInfo& info);

}  // namespace hako
