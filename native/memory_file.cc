#include "memory_file.h"

#include "js_values.h"
#include "kvm_error.h"
#include "unique_fd.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <string>

namespace hako {

namespace {

constexpr uint64_t kMaxSafeInteger = (uint64_t{1} << 53) - 1;

// Only a WebAssembly.Memory's pages may be replaced: they are reserved by V8
// for that memory alone. An ordinary ArrayBuffer may share its pages with
// other heap data.
void checkIsBufferOfMemory(Napi::Env env, Napi::ArrayBuffer buffer, Napi::Object memory) {
  Napi::Object webAssembly = env.Global().Get("WebAssembly").As<Napi::Object>();
  Napi::Function memoryClass = webAssembly.Get("Memory").As<Napi::Function>();
  if (!memory.InstanceOf(memoryClass) || !memory.Get("buffer").StrictEquals(buffer)) {
    throw Napi::TypeError::New(env, "memory must be a WebAssembly.Memory and buffer its current buffer");
  }
}

}  // namespace

UniqueFd openMemoryFile(Napi::Env env, const std::string& syscall, const std::string& path, uint64_t offset,
                        uint64_t size) {
  uint64_t page = static_cast<uint64_t>(sysconf(_SC_PAGESIZE));
  if (size == 0 || size % page != 0 || offset % page != 0) {
    throwKvmError(env, syscall, EINVAL,
                  "size " + hex(size) + " must be > 0 and, like the file offset " + hex(offset) +
                      ", a multiple of the page size " + hex(page));
  }
  UniqueFd fd(open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd.valid()) throwKvmError(env, "open(" + path + ")", errno);
  struct stat st {};
  if (fstat(fd.get(), &st) < 0) throwKvmError(env, "fstat(" + path + ")", errno);
  // Pages past the end of the file would raise SIGBUS when touched.
  if (!S_ISREG(st.st_mode)) throwKvmError(env, syscall, EINVAL, "not a regular file");
  if (static_cast<uint64_t>(st.st_size) < offset + size) {
    throwKvmError(env, syscall, EINVAL,
                  "the file is " + hex(st.st_size) + " bytes, shorter than the size " + hex(size) + " to map" +
                      (offset == 0 ? "" : " from offset " + hex(offset)));
  }
  return fd;
}

void MapMemoryFile(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!info[0].IsArrayBuffer()) throw Napi::TypeError::New(env, "buffer must be an ArrayBuffer");
  Napi::ArrayBuffer buffer = info[0].As<Napi::ArrayBuffer>();
  uint64_t size = toUint(info[1], "size", kMaxSafeInteger);
  if (!info[2].IsString()) throw Napi::TypeError::New(env, "path must be a string");
  std::string path = info[2].As<Napi::String>().Utf8Value();
  checkIsBufferOfMemory(env, buffer, toObject(info[3], "memory"));
  const std::string syscall = "mmap(" + path + ")";

  uint64_t page = static_cast<uint64_t>(sysconf(_SC_PAGESIZE));
  auto* start = static_cast<uint8_t*>(buffer.Data());
  // Past byteLength lies memory that is not the buffer's to replace.
  if (size == 0 || size % page != 0 || size > buffer.ByteLength() || reinterpret_cast<uintptr_t>(start) % page != 0) {
    throwKvmError(env, syscall, EINVAL,
                  "size " + hex(size) + " must be > 0, a multiple of the page size " + hex(page) +
                      " and within the buffer's byteLength " + hex(buffer.ByteLength()));
  }
  UniqueFd fd = openMemoryFile(env, syscall, path, 0, size);
  // Private: writes go to copy-on-write pages of this process, never to the file.
  if (mmap(start, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_FIXED, fd.get(), 0) == MAP_FAILED) {
    throwKvmError(env, syscall, errno, "size " + hex(size));
  }
  // Best effort: KSM may merge identical private pages across VMs; a kernel
  // without CONFIG_KSM refuses, and the memory works the same.
  madvise(start, size, MADV_MERGEABLE);
}

}  // namespace hako
