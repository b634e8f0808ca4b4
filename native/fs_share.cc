#include "fs_share.h"

#include "js_values.h"
#include "kvm_error.h"
#include "unique_fd.h"

#include <dirent.h>
#include <fcntl.h>
#include <linux/magic.h>
#include <linux/openat2.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/uio.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <cstdint>
#include <cstring>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

namespace hako {

namespace {

constexpr uint32_t kRootNode = 0;
/** Nodes plus open files per share: bounds the host fds one guest can make the VMM hold. */
constexpr size_t kMaxHandles = 65536;
constexpr uint64_t kMaxIovecs = 1024;  // the kernel's UIO_MAXIOV
constexpr uint64_t kIovecBytes = 16;
constexpr uint64_t kStatBytes = 96;
constexpr uint64_t kAttrBytes = 48;
constexpr uint64_t kStatfsBytes = 80;
constexpr uint64_t kMaxNameBytes = 255;
constexpr uint64_t kMaxXattrValue = 65536;  // XATTR_SIZE_MAX
/** getdents64 bounce buffer: room for at least one entry of a 255-byte name, at most 64 KiB a call. */
constexpr uint64_t kMinDirBuffer = 512;
constexpr uint64_t kMaxDirBuffer = 65536;

// FUSE FATTR_* bits of the attr record (fsSetattr).
constexpr uint32_t kAttrMode = 1, kAttrUid = 2, kAttrGid = 4, kAttrSize = 8, kAttrAtime = 16, kAttrMtime = 32,
                   kAttrAtimeNow = 128, kAttrMtimeNow = 256;
/** The open flags a guest may pass through (the device model masks the rest). */
constexpr int kOpenFlags = O_ACCMODE | O_APPEND | O_TRUNC | O_NONBLOCK | O_SYNC | O_DSYNC | O_DIRECTORY | O_NOATIME;

using Table = std::unordered_map<uint32_t, UniqueFd>;

struct Share {
  UniqueFd root;
  /** /proc/self/fd, checked to be procfs: nodes are re-opened through it by number. */
  UniqueFd procFds;
  bool readOnly = false;
  Table nodes;
  Table files;
  uint32_t nextNode = 1;
  uint32_t nextFile = 0;
};

// Shares outlive any one JS object (the device model names them by id); the
// lock keeps a handle from being closed under an op of another thread.
std::mutex sharesLock;
std::unordered_map<uint32_t, std::unique_ptr<Share>> shares;
uint32_t nextShare = 1;

/** The Wasm memory's current buffer; every pointer is checked against its byteLength. */
class Memory {
 public:
  explicit Memory(Napi::Value value) {
    if (!value.IsArrayBuffer()) throw Napi::TypeError::New(value.Env(), "memory must be an ArrayBuffer (WebAssembly.Memory#buffer)");
    auto buffer = value.As<Napi::ArrayBuffer>();
    base_ = static_cast<uint8_t*>(buffer.Data());
    size_ = buffer.ByteLength();
  }
  /** [ptr, ptr + len) of the memory, or nullptr when it does not lie inside. */
  uint8_t* at(uint64_t ptr, uint64_t len) const {
    if (ptr > size_ || len > size_ - ptr) return nullptr;
    return base_ + ptr;
  }

 private:
  uint8_t* base_ = nullptr;
  uint64_t size_ = 0;
};

/** Reads the positional arguments of one op in order. */
class Args {
 public:
  explicit Args(const Napi::CallbackInfo& info) : info_(info) {}
  uint32_t u32(const char* what) { return static_cast<uint32_t>(toUint(info_[next_++], what, UINT32_MAX)); }
  bool flag(const char* what) { return toBool(info_[next_++], what); }
  Memory memory() { return Memory(info_[next_++]); }
  /** A BigInt as a signed 64-bit value (the Wasm i64/u64 the device model passed). */
  int64_t i64(const char* what) {
    Napi::Value value = info_[next_++];
    if (!value.IsBigInt()) throw Napi::TypeError::New(value.Env(), std::string(what) + " must be a BigInt");
    bool lossless = false;
    int64_t v = value.As<Napi::BigInt>().Int64Value(&lossless);
    if (!lossless) throw Napi::TypeError::New(value.Env(), std::string(what) + " must be a BigInt in [-2n**63n, 2n**63n)");
    return v;
  }
  /** A file handle, or -1 for none. */
  int64_t optionalHandle(const char* what) {
    Napi::Value value = info_[next_];
    if (value.IsNumber() && value.As<Napi::Number>().DoubleValue() == -1) {
      next_++;
      return -1;
    }
    return u32(what);
  }

 private:
  const Napi::CallbackInfo& info_;
  size_t next_ = 0;
};

int negErrno() { return -errno; }

Share* findShare(uint32_t id) {
  auto it = shares.find(id);
  return it == shares.end() ? nullptr : it->second.get();
}

int lookupFd(const Table& table, uint32_t handle) {
  auto it = table.find(handle);
  return it == table.end() ? -EBADF : it->second.get();
}

int nodeFd(const Share& share, uint32_t node) {
  return node == kRootNode ? share.root.get() : lookupFd(share.nodes, node);
}

/** Stores `fd` under a new handle (< 2^31, so it fits the i32 result); -ENFILE when the share holds too many. */
int insert(Table& table, uint32_t& next, uint32_t first, UniqueFd fd, const Share& share) {
  if (share.nodes.size() + share.files.size() >= kMaxHandles) return -ENFILE;
  while (table.count(next) != 0 || next < first) next = next >= INT32_MAX ? first : next + 1;
  uint32_t handle = next;
  table.emplace(handle, std::move(fd));
  next = handle >= INT32_MAX ? first : handle + 1;
  return static_cast<int>(handle);
}

template <typename T>
void put(uint8_t* out, size_t offset, T value) {
  std::memcpy(out + offset, &value, sizeof value);  // little-endian, like Wasm
}

template <typename T>
T get(const uint8_t* in, size_t offset) {
  T value;
  std::memcpy(&value, in + offset, sizeof value);
  return value;
}

/** The 96-byte stat record of the contract: fuse_attr, then the device number. */
int writeStat(int fd, uint8_t* out) {
  struct stat st;
  if (fstatat(fd, "", &st, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW) != 0) return negErrno();
  std::memset(out, 0, kStatBytes);
  put<uint64_t>(out, 0, st.st_ino);
  put<uint64_t>(out, 8, st.st_size);
  put<uint64_t>(out, 16, st.st_blocks);
  put<int64_t>(out, 24, st.st_atim.tv_sec);
  put<int64_t>(out, 32, st.st_mtim.tv_sec);
  put<int64_t>(out, 40, st.st_ctim.tv_sec);
  put<uint32_t>(out, 48, st.st_atim.tv_nsec);
  put<uint32_t>(out, 52, st.st_mtim.tv_nsec);
  put<uint32_t>(out, 56, st.st_ctim.tv_nsec);
  put<uint32_t>(out, 60, st.st_mode);
  put<uint32_t>(out, 64, st.st_nlink);
  put<uint32_t>(out, 68, st.st_uid);
  put<uint32_t>(out, 72, st.st_gid);
  // new_encode_dev, what the guest kernel decodes.
  uint32_t major = ::major(st.st_rdev), minor = ::minor(st.st_rdev);
  put<uint32_t>(out, 76, (minor & 0xff) | (major << 8) | ((minor & ~0xffu) << 12));
  put<uint32_t>(out, 80, st.st_blksize);
  put<uint64_t>(out, 88, st.st_dev);
  return 0;
}

/** One path component from memory: the *at calls must resolve nothing but it. */
int readName(const Memory& memory, uint64_t ptr, uint64_t len, std::string& name) {
  if (len == 0) return -EINVAL;
  if (len > kMaxNameBytes) return -ENAMETOOLONG;
  const uint8_t* bytes = memory.at(ptr, len);
  if (bytes == nullptr) return -EFAULT;
  name.assign(reinterpret_cast<const char*>(bytes), len);
  if (name == "." || name == ".." || name.find('/') != std::string::npos || name.find('\0') != std::string::npos) {
    return -EINVAL;
  }
  return 0;
}

/** An xattr name: NUL-free, and only in the "user." namespace (others are the host's business). */
int readXattrName(const Memory& memory, uint64_t ptr, uint64_t len, std::string& name, int foreign) {
  if (len == 0) return -EINVAL;
  if (len > kMaxNameBytes) return -ERANGE;
  const uint8_t* bytes = memory.at(ptr, len);
  if (bytes == nullptr) return -EFAULT;
  name.assign(reinterpret_cast<const char*>(bytes), len);
  if (name.find('\0') != std::string::npos) return -EINVAL;
  if (name.rfind("user.", 0) != 0) return foreign;
  return 0;
}

/** O_PATH fd of `name` in directory `parentFd`, never following a symlink (a symlink itself is returned). */
int openChild(int parentFd, const std::string& name, int extraFlags = 0) {
  open_how how{};
  how.flags = O_PATH | O_NOFOLLOW | O_CLOEXEC | extraFlags;
  how.resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS;
  long fd;
  do {
    fd = syscall(SYS_openat2, parentFd, name.c_str(), &how, sizeof how);
  } while (fd < 0 && errno == EINTR);
  return fd < 0 ? negErrno() : static_cast<int>(fd);
}

/** fd's name under /proc/self/fd: opening it opens the very inode fd holds, whatever happened to its path. */
std::string procName(int fd) { return std::to_string(fd); }

std::string procPath(int fd) { return "/proc/self/fd/" + procName(fd); }

/** The file type of `fd` (S_IFREG, ...), or -errno. */
int fileType(int fd) {
  struct stat st;
  if (fstat(fd, &st) != 0) return negErrno();
  return static_cast<int>(st.st_mode & S_IFMT);
}

/** A host device node (anything but the whiteout char 0:0): a guest may not change or link it. */
bool isHostDevice(int fd) {
  struct stat st;
  if (fstat(fd, &st) != 0) return false;
  return S_ISBLK(st.st_mode) || (S_ISCHR(st.st_mode) && st.st_rdev != 0);
}

/** A real open of the node's inode with `flags`: only regular files and directories (never a FIFO or device). */
int reopen(const Share& share, int fd, int flags) {
  int type = fileType(fd);
  if (type < 0) return type;
  if (type != S_IFREG && type != S_IFDIR) return -ENXIO;
  int opened = openat(share.procFds.get(), procName(fd).c_str(), flags | O_CLOEXEC | O_NOCTTY);
  return opened < 0 ? negErrno() : opened;
}

/** Registers node `fd` (taking it) after writing its stat record to `stat`; the new handle or -errno. */
int addNode(Share& share, int fd, uint8_t* stat) {
  UniqueFd owned(fd);
  int err = writeStat(fd, stat);
  if (err != 0) return err;
  return insert(share.nodes, share.nextNode, 1, std::move(owned), share);
}

/**
 * Gives a node the guest just made its caller's owner and exact mode (the
 * VMM's umask must not cut it). A VMM without CAP_CHOWN cannot give files
 * away: they stay the VMM user's (EPERM is not an error then).
 */
int adopt(const Share& share, int fd, uint32_t mode, uint32_t uid, uint32_t gid, bool symlink) {
  if (fchownat(fd, "", uid, gid, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW) != 0 && errno != EPERM) return negErrno();
  // A symlink's mode is fixed; chown cleared set-id bits, so the mode comes after it.
  if (!symlink && fchmodat(share.procFds.get(), procName(fd).c_str(), mode & 07777, 0) != 0) return negErrno();
  return 0;
}

/**
 * Registers `fd` (or -errno), the node just made as `name` in `parentFd`, owned by uid:gid; on failure
 * `name` is removed again.
 */
int finishMade(Share& share, int fd, int parentFd, const std::string& name, bool directory, uint32_t mode,
               uint32_t uid, uint32_t gid, uint8_t* stat) {
  int err = fd;
  if (fd >= 0) {
    int type = fileType(fd);
    err = type < 0 ? type : adopt(share, fd, mode, uid, gid, type == S_IFLNK);
    if (err == 0) return addNode(share, fd, stat);
    close(fd);
  }
  unlinkat(parentFd, name.c_str(), directory ? AT_REMOVEDIR : 0);
  return err;
}

/** Host iovecs for `count` {u64 addr, u64 len} entries at `iovPtr`, every range checked; the total or -errno. */
int64_t gatherIovecs(const Memory& memory, uint64_t iovPtr, uint64_t count, std::vector<iovec>& out) {
  if (count > kMaxIovecs) return -EINVAL;
  const uint8_t* entries = memory.at(iovPtr, count * kIovecBytes);
  if (entries == nullptr) return -EFAULT;
  out.resize(count);
  uint64_t total = 0;
  for (uint64_t i = 0; i < count; i++) {
    auto addr = get<uint64_t>(entries, i * kIovecBytes);
    auto len = get<uint64_t>(entries, i * kIovecBytes + 8);
    uint8_t* range = memory.at(addr, len);
    if (range == nullptr) return -EFAULT;
    total += len;  // each len fits the memory (< 2^33): 1024 of them cannot overflow
    out[i] = {range, len};
  }
  return total > INT32_MAX ? -EINVAL : static_cast<int64_t>(total);  // the result is an i32 byte count
}

/** A name in a directory node: the (parent, name, nameLen) arguments most calls start with. */
struct Entry {
  int parent;        // the directory's fd
  std::string name;  // one checked path component
  int err;           // 0, or -errno: a bad name, then an unknown parent
};

/** Reads the next three arguments as an Entry; `parentArg` names the first in errors. */
Entry readEntry(const Share& share, Args& args, const Memory& memory, const char* parentArg = "parent") {
  Entry entry;
  entry.parent = nodeFd(share, args.u32(parentArg));
  uint64_t namePtr = args.u32("name"), nameLen = args.u32("nameLen");
  entry.err = readName(memory, namePtr, nameLen, entry.name);
  if (entry.err == 0 && entry.parent < 0) entry.err = entry.parent;
  return entry;
}

/** Runs `op` under the lock with the share named by the first argument; -EBADF for an unknown share. */
template <typename Op>
Napi::Value withShare(const Napi::CallbackInfo& info, Op op) {
  std::lock_guard<std::mutex> guard(sharesLock);
  Args args(info);
  Share* share = findShare(args.u32("share"));
  if (share == nullptr) return Napi::Number::New(info.Env(), -EBADF);
  return Napi::Number::New(info.Env(), static_cast<double>(op(*share, args)));
}

}  // namespace

Napi::Value FsShareOpen(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!info[0].IsString()) throw Napi::TypeError::New(env, "rootPath must be a string");
  std::string rootPath = info[0].As<Napi::String>().Utf8Value();
  if (rootPath.empty() || rootPath.find('\0') != std::string::npos) {
    throw Napi::TypeError::New(env, "rootPath must be a non-empty path without NUL bytes");
  }
  bool readOnly = toBool(info[1], "readOnly");
  auto share = std::make_unique<Share>();
  share->readOnly = readOnly;
  open_how how{};
  how.flags = O_PATH | O_DIRECTORY | O_CLOEXEC;
  how.resolve = RESOLVE_NO_MAGICLINKS;
  long root = syscall(SYS_openat2, AT_FDCWD, rootPath.c_str(), &how, sizeof how);
  if (root < 0) throwKvmError(env, "openat2(" + rootPath + ")", errno, "the shared directory must exist and be a directory");
  share->root.reset(static_cast<int>(root));
  long procFds = syscall(SYS_openat2, AT_FDCWD, "/proc/self/fd", &how, sizeof how);
  if (procFds < 0) throwKvmError(env, "openat2(/proc/self/fd)", errno, "virtio-fs needs /proc mounted");
  share->procFds.reset(static_cast<int>(procFds));
  struct statfs fs;
  if (fstatfs(share->procFds.get(), &fs) != 0) throwKvmError(env, "fstatfs(/proc/self/fd)", errno);
  if (fs.f_type != PROC_SUPER_MAGIC) throwKvmError(env, "fstatfs(/proc/self/fd)", EXDEV, "/proc is not procfs");
  std::lock_guard<std::mutex> guard(sharesLock);
  while (nextShare == 0 || shares.count(nextShare) != 0) nextShare = nextShare >= INT32_MAX ? 1 : nextShare + 1;
  uint32_t id = nextShare++;
  shares.emplace(id, std::move(share));
  return Napi::Number::New(env, id);
}

Napi::Value FsShareClose(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto id = static_cast<uint32_t>(toUint(info[0], "share", UINT32_MAX));
  std::lock_guard<std::mutex> guard(sharesLock);
  if (shares.erase(id) == 0) throwKvmError(env, "fsShareClose", EBADF, "no open share " + std::to_string(id));
  return env.Undefined();
}

Napi::Value FsLookup(const Napi::CallbackInfo& info) {
  return withShare(info, [](Share& share, Args& args) {
    Memory memory = args.memory();
    Entry entry = readEntry(share, args, memory);
    uint8_t* stat = memory.at(args.u32("stat"), kStatBytes);
    if (entry.err != 0) return entry.err;
    if (stat == nullptr) return -EFAULT;
    int fd = openChild(entry.parent, entry.name);
    return fd < 0 ? fd : addNode(share, fd, stat);
  });
}

Napi::Value FsForget(const Napi::CallbackInfo& info) {
  withShare(info, [](Share& share, Args& args) {
    uint32_t node = args.u32("node");
    if (node != kRootNode) share.nodes.erase(node);
    return 0;
  });
  return info.Env().Undefined();
}

Napi::Value FsGetattr(const Napi::CallbackInfo& info) {
  return withShare(info, [](Share& share, Args& args) {
    Memory memory = args.memory();
    int fd = nodeFd(share, args.u32("node"));
    uint8_t* stat = memory.at(args.u32("stat"), kStatBytes);
    if (fd < 0) return fd;
    return stat == nullptr ? -EFAULT : writeStat(fd, stat);
  });
}

Napi::Value FsSetattr(const Napi::CallbackInfo& info) {
  return withShare(info, [](Share& share, Args& args) {
    Memory memory = args.memory();
    int fd = nodeFd(share, args.u32("node"));
    int64_t file = args.optionalHandle("file");
    const uint8_t* attr = memory.at(args.u32("attr"), kAttrBytes);
    uint8_t* stat = memory.at(args.u32("stat"), kStatBytes);
    if (fd < 0) return fd;
    int fileFd = file < 0 ? -1 : lookupFd(share.files, static_cast<uint32_t>(file));
    if (file >= 0 && fileFd < 0) return fileFd;
    if (attr == nullptr || stat == nullptr) return -EFAULT;
    auto valid = get<uint32_t>(attr, 0);
    if (valid != 0 && share.readOnly) return -EROFS;
    int type = fileType(fd);
    if (type < 0) return type;
    // A host device node the share happens to hold stays as the host made it (mode, owner, times).
    if (valid != 0 && isHostDevice(fd)) return -EPERM;
    if (valid & kAttrMode) {
      // chmod through the magic link changes the inode itself, without opening it; a symlink has no mode.
      if (type == S_IFLNK) return -EOPNOTSUPP;
      if (fchmodat(share.procFds.get(), procName(fd).c_str(), get<uint32_t>(attr, 4) & 07777, 0) != 0) return negErrno();
    }
    if (valid & (kAttrUid | kAttrGid)) {
      uid_t uid = valid & kAttrUid ? get<uint32_t>(attr, 8) : static_cast<uid_t>(-1);
      gid_t gid = valid & kAttrGid ? get<uint32_t>(attr, 12) : static_cast<gid_t>(-1);
      if (fchownat(fd, "", uid, gid, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW) != 0) return negErrno();
    }
    if (valid & kAttrSize) {
      auto size = get<uint64_t>(attr, 16);
      if (size > INT64_MAX) return -EINVAL;
      if (fileFd >= 0) {
        if (ftruncate(fileFd, static_cast<off_t>(size)) != 0) return negErrno();
      } else {
        if (type == S_IFDIR) return -EISDIR;
        if (type != S_IFREG) return -EINVAL;
        UniqueFd writable(reopen(share, fd, O_WRONLY | O_NONBLOCK));
        if (!writable.valid()) return writable.get();
        if (ftruncate(writable.get(), static_cast<off_t>(size)) != 0) return negErrno();
      }
    }
    if (valid & (kAttrAtime | kAttrMtime | kAttrAtimeNow | kAttrMtimeNow)) {
      timespec times[2] = {{0, UTIME_OMIT}, {0, UTIME_OMIT}};
      if (valid & kAttrAtimeNow) times[0].tv_nsec = UTIME_NOW;
      else if (valid & kAttrAtime) times[0] = {get<int64_t>(attr, 24), get<uint32_t>(attr, 40)};
      if (valid & kAttrMtimeNow) times[1].tv_nsec = UTIME_NOW;
      else if (valid & kAttrMtime) times[1] = {get<int64_t>(attr, 32), get<uint32_t>(attr, 44)};
      if (utimensat(fd, "", times, AT_EMPTY_PATH) != 0) return negErrno();
    }
    return writeStat(fd, stat);
  });
}

Napi::Value FsReadlink(const Napi::CallbackInfo& info) {
  return withShare(info, [](Share& share, Args& args) {
    Memory memory = args.memory();
    int fd = nodeFd(share, args.u32("node"));
    uint64_t ptr = args.u32("buf"), cap = args.u32("cap");
    if (fd < 0) return fd;
    auto* buf = reinterpret_cast<char*>(memory.at(ptr, cap));
    if (buf == nullptr) return -EFAULT;
    ssize_t n = readlinkat(fd, "", buf, cap);
    return n < 0 ? negErrno() : static_cast<int>(n);
  });
}

Napi::Value FsOpen(const Napi::CallbackInfo& info) {
  return withShare(info, [](Share& share, Args& args) {
    int fd = nodeFd(share, args.u32("node"));
    auto flags = static_cast<int>(args.u32("flags"));
    if (fd < 0) return fd;
    if ((flags & ~kOpenFlags) != 0 || (flags & O_ACCMODE) == O_ACCMODE) return -EINVAL;
    if (share.readOnly && ((flags & O_ACCMODE) != O_RDONLY || (flags & O_TRUNC) != 0)) return -EROFS;
    int opened = reopen(share, fd, flags);
    return opened < 0 ? opened : insert(share.files, share.nextFile, 0, UniqueFd(opened), share);
  });
}

Napi::Value FsRelease(const Napi::CallbackInfo& info) {
  withShare(info, [](Share& share, Args& args) {
    share.files.erase(args.u32("file"));
    return 0;
  });
  return info.Env().Undefined();
}

Napi::Value FsCreate(const Napi::CallbackInfo& info) {
  return withShare(info, [](Share& share, Args& args) {
    Memory memory = args.memory();
    Entry entry = readEntry(share, args, memory);
    uint32_t mode = args.u32("mode");
    bool exclusive = args.flag("exclusive");
    uint32_t uid = args.u32("uid"), gid = args.u32("gid");
    uint8_t* stat = memory.at(args.u32("stat"), kStatBytes);
    if (entry.err != 0) return entry.err;
    if (stat == nullptr) return -EFAULT;
    if (share.readOnly) return -EROFS;
    // O_EXCL: only a file this call makes is opened (never an existing FIFO or device).
    int made = openat(entry.parent, entry.name.c_str(), O_CREAT | O_EXCL | O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY, mode & 07777);
    if (made >= 0) {
      UniqueFd file(made);
      int fd = openat(share.procFds.get(), procName(made).c_str(), O_PATH | O_CLOEXEC);
      return finishMade(share, fd < 0 ? negErrno() : fd, entry.parent, entry.name, false, mode, uid, gid, stat);
    }
    if (errno != EEXIST || exclusive) return negErrno();
    int fd = openChild(entry.parent, entry.name);
    if (fd < 0) return fd;
    int type = fileType(fd);
    if (type != S_IFREG) {
      close(fd);
      return type < 0 ? type : type == S_IFDIR ? -EISDIR : type == S_IFLNK ? -ELOOP : -ENXIO;
    }
    return addNode(share, fd, stat);
  });
}

Napi::Value FsMknod(const Napi::CallbackInfo& info) {
  return withShare(info, [](Share& share, Args& args) {
    Memory memory = args.memory();
    Entry entry = readEntry(share, args, memory);
    uint32_t mode = args.u32("mode"), rdev = args.u32("rdev");
    uint32_t uid = args.u32("uid"), gid = args.u32("gid");
    uint8_t* stat = memory.at(args.u32("stat"), kStatBytes);
    if (entry.err != 0) return entry.err;
    if (stat == nullptr) return -EFAULT;
    if (share.readOnly) return -EROFS;
    uint32_t type = mode & S_IFMT;
    if (type == 0) type = S_IFREG;
    // A guest must not plant host device nodes; char 0:0 is overlayfs's whiteout.
    if (type == S_IFBLK || (type == S_IFCHR && rdev != 0)) return -EPERM;
    if (type != S_IFREG && type != S_IFIFO && type != S_IFSOCK && type != S_IFCHR) return -EINVAL;
    if (mknodat(entry.parent, entry.name.c_str(), type | (mode & 07777), 0) != 0) return negErrno();
    return finishMade(share, openChild(entry.parent, entry.name), entry.parent, entry.name, false, mode, uid, gid, stat);
  });
}

Napi::Value FsMkdir(const Napi::CallbackInfo& info) {
  return withShare(info, [](Share& share, Args& args) {
    Memory memory = args.memory();
    Entry entry = readEntry(share, args, memory);
    uint32_t mode = args.u32("mode");
    uint32_t uid = args.u32("uid"), gid = args.u32("gid");
    uint8_t* stat = memory.at(args.u32("stat"), kStatBytes);
    if (entry.err != 0) return entry.err;
    if (stat == nullptr) return -EFAULT;
    if (share.readOnly) return -EROFS;
    if (mkdirat(entry.parent, entry.name.c_str(), mode & 07777) != 0) return negErrno();
    return finishMade(share, openChild(entry.parent, entry.name, O_DIRECTORY), entry.parent, entry.name, true, mode, uid, gid, stat);
  });
}

Napi::Value FsSymlink(const Napi::CallbackInfo& info) {
  return withShare(info, [](Share& share, Args& args) {
    Memory memory = args.memory();
    Entry entry = readEntry(share, args, memory);
    uint64_t targetPtr = args.u32("target"), targetLen = args.u32("targetLen");
    uint32_t uid = args.u32("uid"), gid = args.u32("gid");
    uint8_t* stat = memory.at(args.u32("stat"), kStatBytes);
    if (entry.err != 0) return entry.err;
    if (stat == nullptr) return -EFAULT;
    if (targetLen == 0) return -EINVAL;
    if (targetLen >= PATH_MAX) return -ENAMETOOLONG;
    const uint8_t* targetBytes = memory.at(targetPtr, targetLen);
    if (targetBytes == nullptr) return -EFAULT;
    std::string target(reinterpret_cast<const char*>(targetBytes), targetLen);
    if (target.find('\0') != std::string::npos) return -EINVAL;
    if (share.readOnly) return -EROFS;
    // The target is only text to the host: nothing here ever follows it.
    if (symlinkat(target.c_str(), entry.parent, entry.name.c_str()) != 0) return negErrno();
    return finishMade(share, openChild(entry.parent, entry.name), entry.parent, entry.name, false, 0, uid, gid, stat);
  });
}

Napi::Value FsLink(const Napi::CallbackInfo& info) {
  return withShare(info, [](Share& share, Args& args) {
    Memory memory = args.memory();
    int fd = nodeFd(share, args.u32("node"));
    Entry entry = readEntry(share, args, memory, "newParent");
    uint8_t* stat = memory.at(args.u32("stat"), kStatBytes);
    if (entry.err != 0) return entry.err;
    if (fd < 0) return fd;
    if (stat == nullptr) return -EFAULT;
    if (share.readOnly) return -EROFS;
    if (isHostDevice(fd)) return -EPERM;
    // Through the magic link: linkat with AT_EMPTY_PATH would need CAP_DAC_READ_SEARCH.
    if (linkat(share.procFds.get(), procName(fd).c_str(), entry.parent, entry.name.c_str(), AT_SYMLINK_FOLLOW) != 0) return negErrno();
    int linked = openChild(entry.parent, entry.name);
    return linked < 0 ? linked : addNode(share, linked, stat);
  });
}

Napi::Value FsUnlink(const Napi::CallbackInfo& info) {
  return withShare(info, [](Share& share, Args& args) {
    Memory memory = args.memory();
    Entry entry = readEntry(share, args, memory);
    bool directory = args.flag("directory");
    if (entry.err != 0) return entry.err;
    if (share.readOnly) return -EROFS;
    return unlinkat(entry.parent, entry.name.c_str(), directory ? AT_REMOVEDIR : 0) != 0 ? negErrno() : 0;
  });
}

Napi::Value FsRename(const Napi::CallbackInfo& info) {
  return withShare(info, [](Share& share, Args& args) {
    Memory memory = args.memory();
    int oldParent = nodeFd(share, args.u32("oldParent"));
    uint64_t oldPtr = args.u32("oldName"), oldLen = args.u32("oldLen");
    int newParent = nodeFd(share, args.u32("newParent"));
    uint64_t newPtr = args.u32("newName"), newLen = args.u32("newLen");
    uint32_t flags = args.u32("flags");
    std::string oldName, newName;
    if (int err = readName(memory, oldPtr, oldLen, oldName); err != 0) return err;
    if (int err = readName(memory, newPtr, newLen, newName); err != 0) return err;
    if (oldParent < 0) return oldParent;
    if (newParent < 0) return newParent;
    if ((flags & ~(RENAME_NOREPLACE | RENAME_EXCHANGE)) != 0) return -EINVAL;
    if (share.readOnly) return -EROFS;
    return renameat2(oldParent, oldName.c_str(), newParent, newName.c_str(), flags) != 0 ? negErrno() : 0;
  });
}

namespace {

/** fsRead and fsWrite: one preadv or pwritev straight between the file and memory. */
Napi::Value transfer(const Napi::CallbackInfo& info, bool write) {
  return withShare(info, [write](Share& share, Args& args) -> int64_t {
    Memory memory = args.memory();
    int fd = lookupFd(share.files, args.u32("file"));
    int64_t offset = args.i64("offset");
    uint64_t iovPtr = args.u32("iov"), count = args.u32("count");
    if (fd < 0) return fd;
    if (write && share.readOnly) return -EROFS;
    if (offset < 0) return -EINVAL;
    std::vector<iovec> iov;
    int64_t total = gatherIovecs(memory, iovPtr, count, iov);
    if (total <= 0) return total;
    ssize_t n;
    do {
      n = write ? pwritev(fd, iov.data(), static_cast<int>(iov.size()), offset)
                : preadv(fd, iov.data(), static_cast<int>(iov.size()), offset);
    } while (n < 0 && errno == EINTR);
    return n < 0 ? negErrno() : n;
  });
}

}  // namespace

Napi::Value FsRead(const Napi::CallbackInfo& info) { return transfer(info, false); }

Napi::Value FsWrite(const Napi::CallbackInfo& info) { return transfer(info, true); }

Napi::Value FsFsync(const Napi::CallbackInfo& info) {
  return withShare(info, [](Share& share, Args& args) {
    int fd = lookupFd(share.files, args.u32("file"));
    bool datasync = args.flag("datasync");
    if (fd < 0) return fd;
    return (datasync ? fdatasync(fd) : fsync(fd)) != 0 ? negErrno() : 0;
  });
}

Napi::Value FsFallocate(const Napi::CallbackInfo& info) {
  return withShare(info, [](Share& share, Args& args) {
    int fd = lookupFd(share.files, args.u32("file"));
    auto mode = static_cast<int>(args.u32("mode"));
    int64_t offset = args.i64("offset"), length = args.i64("length");
    if (fd < 0) return fd;
    if (share.readOnly) return -EROFS;
    return fallocate(fd, mode, offset, length) != 0 ? negErrno() : 0;
  });
}

Napi::Value FsLseek(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::lock_guard<std::mutex> guard(sharesLock);
  Args args(info);
  Share* share = findShare(args.u32("share"));
  uint32_t file = args.u32("file");
  int64_t offset = args.i64("offset");
  auto whence = static_cast<int>(args.u32("whence"));
  int fd = share == nullptr ? -EBADF : lookupFd(share->files, file);
  off_t result = fd < 0 ? fd : lseek(fd, offset, whence);
  if (fd >= 0 && result < 0) result = negErrno();
  return Napi::BigInt::New(env, static_cast<int64_t>(result));
}

Napi::Value FsStatfs(const Napi::CallbackInfo& info) {
  return withShare(info, [](Share& share, Args& args) {
    Memory memory = args.memory();
    int fd = nodeFd(share, args.u32("node"));
    uint8_t* out = memory.at(args.u32("out"), kStatfsBytes);
    if (fd < 0) return fd;
    if (out == nullptr) return -EFAULT;
    struct statfs fs;
    if (fstatfs(fd, &fs) != 0) return negErrno();
    std::memset(out, 0, kStatfsBytes);
    put<uint64_t>(out, 0, fs.f_blocks);
    put<uint64_t>(out, 8, fs.f_bfree);
    put<uint64_t>(out, 16, fs.f_bavail);
    put<uint64_t>(out, 24, fs.f_files);
    put<uint64_t>(out, 32, fs.f_ffree);
    put<uint32_t>(out, 40, fs.f_bsize);
    put<uint32_t>(out, 44, fs.f_namelen);
    put<uint32_t>(out, 48, fs.f_frsize);
    return 0;
  });
}

Napi::Value FsReaddir(const Napi::CallbackInfo& info) {
  return withShare(info, [](Share& share, Args& args) {
    Memory memory = args.memory();
    int fd = lookupFd(share.files, args.u32("file"));
    int64_t offset = args.i64("offset");
    uint64_t bufPtr = args.u32("buf"), cap = args.u32("cap");
    if (fd < 0) return fd;
    uint8_t* out = memory.at(bufPtr, cap);
    if (out == nullptr) return -EFAULT;
    // Cookies are the d_off values getdents64 gave, so the directory is positioned by them alone.
    if (lseek(fd, offset, SEEK_SET) < 0) return negErrno();
    // A fuse_dirent is never smaller than its linux_dirent64: cap bytes of the latter are enough.
    std::vector<uint8_t> bounce(std::min(std::max(cap, kMinDirBuffer), kMaxDirBuffer));
    long got = syscall(SYS_getdents64, fd, bounce.data(), bounce.size());
    if (got < 0) return negErrno();
    uint64_t written = 0;
    for (long at = 0; at < got;) {
      auto reclen = get<uint16_t>(bounce.data(), at + offsetof(dirent64, d_reclen));
      const char* name = reinterpret_cast<const char*>(bounce.data() + at + offsetof(dirent64, d_name));
      size_t nameLen = strnlen(name, reclen - offsetof(dirent64, d_name));
      uint64_t size = (24 + nameLen + 7) & ~uint64_t{7};
      if (size > cap - written) {
        if (written == 0) return -EINVAL;  // not even one entry fits
        break;
      }
      uint8_t* entry = out + written;
      put<uint64_t>(entry, 0, get<uint64_t>(bounce.data(), at + offsetof(dirent64, d_ino)));
      put<int64_t>(entry, 8, get<int64_t>(bounce.data(), at + offsetof(dirent64, d_off)));
      put<uint32_t>(entry, 16, static_cast<uint32_t>(nameLen));
      put<uint32_t>(entry, 20, bounce[at + offsetof(dirent64, d_type)]);
      std::memcpy(entry + 24, name, nameLen);
      std::memset(entry + 24 + nameLen, 0, size - 24 - nameLen);
      written += size;
      at += reclen;
    }
    return static_cast<int>(written);
  });
}

Napi::Value FsGetxattr(const Napi::CallbackInfo& info) {
  return withShare(info, [](Share& share, Args& args) {
    Memory memory = args.memory();
    int fd = nodeFd(share, args.u32("node"));
    uint64_t namePtr = args.u32("name"), nameLen = args.u32("nameLen");
    uint64_t bufPtr = args.u32("buf"), cap = args.u32("cap");
    std::string name;
    if (int err = readXattrName(memory, namePtr, nameLen, name, -ENODATA); err != 0) return err;
    if (fd < 0) return fd;
    uint8_t* buf = memory.at(bufPtr, cap);
    if (buf == nullptr) return -EFAULT;
    int type = fileType(fd);
    if (type < 0) return type;
    if (type != S_IFREG && type != S_IFDIR) return -ENODATA;
    ssize_t n = getxattr(procPath(fd).c_str(), name.c_str(), cap == 0 ? nullptr : buf, cap);
    return n < 0 ? negErrno() : static_cast<int>(n);
  });
}

Napi::Value FsListxattr(const Napi::CallbackInfo& info) {
  return withShare(info, [](Share& share, Args& args) {
    Memory memory = args.memory();
    int fd = nodeFd(share, args.u32("node"));
    uint64_t bufPtr = args.u32("buf"), cap = args.u32("cap");
    if (fd < 0) return fd;
    auto* buf = reinterpret_cast<char*>(memory.at(bufPtr, cap));
    if (buf == nullptr) return -EFAULT;
    int type = fileType(fd);
    if (type < 0) return type;
    if (type != S_IFREG && type != S_IFDIR) return 0;
    ssize_t n = listxattr(procPath(fd).c_str(), cap == 0 ? nullptr : buf, cap);
    return n < 0 ? negErrno() : static_cast<int>(n);
  });
}

Napi::Value FsSetxattr(const Napi::CallbackInfo& info) {
  return withShare(info, [](Share& share, Args& args) {
    Memory memory = args.memory();
    int fd = nodeFd(share, args.u32("node"));
    uint64_t namePtr = args.u32("name"), nameLen = args.u32("nameLen");
    uint64_t valuePtr = args.u32("value"), valueLen = args.u32("valueLen");
    uint32_t flags = args.u32("flags");
    std::string name;
    if (int err = readXattrName(memory, namePtr, nameLen, name, -EPERM); err != 0) return err;
    if (fd < 0) return fd;
    if (valueLen > kMaxXattrValue) return -E2BIG;
    const uint8_t* value = memory.at(valuePtr, valueLen);
    if (value == nullptr) return -EFAULT;
    if ((flags & ~(XATTR_CREATE | XATTR_REPLACE)) != 0) return -EINVAL;
    if (share.readOnly) return -EROFS;
    int type = fileType(fd);
    if (type < 0) return type;
    if (type != S_IFREG && type != S_IFDIR) return -EPERM;
    return setxattr(procPath(fd).c_str(), name.c_str(), value, valueLen, static_cast<int>(flags)) != 0 ? negErrno() : 0;
  });
}

Napi::Value FsRemovexattr(const Napi::CallbackInfo& info) {
  return withShare(info, [](Share& share, Args& args) {
    Memory memory = args.memory();
    int fd = nodeFd(share, args.u32("node"));
    uint64_t namePtr = args.u32("name"), nameLen = args.u32("nameLen");
    std::string name;
    if (int err = readXattrName(memory, namePtr, nameLen, name, -EPERM); err != 0) return err;
    if (fd < 0) return fd;
    if (share.readOnly) return -EROFS;
    int type = fileType(fd);
    if (type < 0) return type;
    if (type != S_IFREG && type != S_IFDIR) return -EPERM;
    return removexattr(procPath(fd).c_str(), name.c_str()) != 0 ? negErrno() : 0;
  });
}

}  // namespace hako
