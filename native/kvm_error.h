// Failed syscalls become JS errors (KvmError in host/native.ts) that name the
// call, the errno name and its text: "ioctl(KVM_CREATE_VM): EACCES (Permission denied)".
#pragma once

#include <napi.h>

#include <cstdint>
#include <string>

namespace hako {

/** "EACCES (Permission denied)"; used in error messages and vCPU stop details. */
std::string describeErrno(int err);

/** "EACCES"; "E<n>" for numbers glibc has no name for. */
std::string errnoName(int err);

/** "0x1f" for messages. */
std::string hex(uint64_t value);

/**
 * Throws a JS Error with `code` (errno name), `errno` and `syscall` set.
 * `why`, when given, is appended: it names the bad input or the failed check.
 */
[[noreturn]] void throwKvmError(Napi::Env env, const std::string& syscall, int err, const std::string& why = {});

}  // namespace hako
