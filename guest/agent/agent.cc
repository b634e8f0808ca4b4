#include "agent.h"

#include <fcntl.h>
#include <linux/fs.h>
#include <linux/openat2.h>
#include <sys/syscall.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/inotify.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/un.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <functional>
#include <optional>

#include "json.h"
#include "system.h"

#ifndef HAKO_AGENT_VERSION
#define HAKO_AGENT_VERSION "dev"
#endif

namespace {

constexpr uint32_t kProtocol = 1;
constexpr int kCrunTimeoutMs = 120'000;  // generous: on PVM hosts every guest syscall is emulated
constexpr uint32_t kMaxStdioBytes = 1 << 20;
constexpr size_t kMaxPendingOomEvents = 1024;
constexpr uint32_t kCgroup2Magic = 0x63677270;
constexpr long kFreezeTimeoutMs = 5000;  // freezing waits for each task to reach a safe point; normally milliseconds
const char* const kControllers[] = {"cpu", "memory", "pids", "io"};
const char kShareTag[] = "hako-shared";  // the virtio-fs tag of the sandbox's shared directory
const char kIdPattern[] = "[A-Za-z0-9][A-Za-z0-9_.-]{0,63}";

bool valid_id(const std::string& id) {
  if (id.empty() || id.size() > 64 || !isalnum(uint8_t(id[0]))) return false;
  for (char c : id)
    if (!isalnum(uint8_t(c)) && c != '_' && c != '.' && c != '-') return false;
  return true;
}

std::string bad_id(const char* field, const std::string& id) {
  std::string shown = id.size() > 80 ? id.substr(0, 80) + "..." : id;
  return std::string(field) + " '" + shown + "' is not a valid id: expected " + kIdPattern;
}

// A rootfs the agent can mount: a block device under /dev/ with ext4 or erofs, or a directory of the share.
bool check_rootfs(const Rootfs& rootfs, std::string& error) {
  if (rootfs.fstype == "virtiofs") {
    if (!rootfs.device.empty()) return error = "rootfs.device must be empty for fstype virtiofs (it names rootfs.path)", false;
    const std::string& p = rootfs.path;
    std::string padded = "/" + p + "/";
    if (p.starts_with("/") || padded.find("/../") != std::string::npos || p.find('\0') != std::string::npos)
      return error = "rootfs.path '" + p + "' must be relative to the shared directory, without '..' components", false;
    return true;
  }
  struct stat st;
  if (!rootfs.device.starts_with("/dev/") || rootfs.device.find("/..") != std::string::npos ||
      stat(rootfs.device.c_str(), &st) < 0 || !S_ISBLK(st.st_mode))
    return error = "rootfs.device '" + rootfs.device + "' is not a block device under /dev/", false;
  if (rootfs.fstype != "ext4" && rootfs.fstype != "erofs")
    return error = "rootfs.fstype '" + rootfs.fstype + "' is not ext4, erofs or virtiofs", false;
  if (!rootfs.path.empty()) return error = "rootfs.path is only for fstype virtiofs", false;
  return true;
}

// Whether an OCI mount takes its source from the share (then the share must be mounted before crun runs).
bool uses_share(const Json& spec, const std::string& share_dir) {
  const Json* mounts = spec.find("mounts");
  if (!mounts || mounts->type != Json::Type::Array) return false;
  for (const Json& m : mounts->items) {
    const Json* source = m.is_object() ? m.find("source") : nullptr;
    if (source && source->type == Json::Type::String &&
        (source->text == share_dir || source->text.starts_with(share_dir + "/")))
      return true;
  }
  return false;
}

std::string process_name(const std::string& container_id, const std::string& exec_id) {
  return exec_id.empty() ? "init process of container '" + container_id + "'"
                         : "process '" + exec_id + "' of container '" + container_id + "'";
}

// An OCI process object the agent can hand to crun: `what` names it in the error.
bool check_process(const Json& process, const std::string& what, std::string& error) {
  if (!process.is_object()) return error = what + " is not a JSON object", false;
  const Json* args = process.find("args");
  if (!args || args->type != Json::Type::Array || args->items.empty())
    return error = what + " has no \"args\" array with the command", false;
  for (const Json& arg : args->items)
    if (arg.type != Json::Type::String) return error = what + " \"args\" holds a value that is not a string", false;
  return true;
}

std::optional<pid_t> read_pid_file(const std::string& path) {
  auto text = read_file(path, 64);
  if (!text) return std::nullopt;
  char* end;
  long pid = strtol(text->c_str(), &end, 10);
  if (end == text->c_str() || pid <= 0 || pid > INT32_MAX) return std::nullopt;
  return pid_t(pid);
}

// Receives the pty master crun sends over --console-socket (SCM_RIGHTS), or -1.
int receive_fd(int listener) {
  int conn = accept4(listener, nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK);
  if (conn < 0) return -1;
  char data[256];
  iovec iov{data, sizeof data};
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int))];
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = control;
  msg.msg_controllen = sizeof control;
  int fd = -1;
  if (recvmsg(conn, &msg, MSG_CMSG_CLOEXEC) >= 0 && !(msg.msg_flags & MSG_CTRUNC)) {
    for (cmsghdr* c = CMSG_FIRSTHDR(&msg); c; c = CMSG_NXTHDR(&msg, c))
      if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS && c->cmsg_len == CMSG_LEN(sizeof(int)))
        memcpy(&fd, CMSG_DATA(c), sizeof fd);
  }
  close(conn);
  return fd;
}

void close_fd(int& fd) {
  if (fd >= 0) close(fd);
  fd = -1;
}


// The integer at `key` of `object` (absent or null: nullopt); `field` names it in errors, e.g. "resources.cpu.quota".
bool json_int(const Json& object, const char* key, const std::string& field, std::optional<int64_t>& out, std::string& error) {
  const Json* v = object.find(key);
  if (!v || v->type == Json::Type::Null) return true;
  errno = 0;
  char* end = nullptr;
  long long n = v->type == Json::Type::Number ? strtoll(v->text.c_str(), &end, 10) : 0;
  if (v->type != Json::Type::Number || *end != '\0' || errno == ERANGE)
    return error = field + " is not a 64-bit integer", false;
  out = int64_t(n);
  return true;
}

// The object at `key` of `resources`, or nullptr (absent or null); error when it is something else.
const Json* json_section(const Json& resources, const char* key, std::string& error) {
  const Json* v = resources.find(key);
  if (!v || v->type == Json::Type::Null) return nullptr;
  if (!v->is_object()) error = std::string("resources.") + key + " is not an object";
  return v->is_object() ? v : nullptr;
}

// A cgroup v2 limit from an OCI one: -1 is "max", positive values are themselves, 0 leaves the limit as it is.
bool limit_value(int64_t value, const std::string& field, std::string& out, std::string& error) {
  if (value < -1) return error = field + " " + std::to_string(value) + " is negative: expected -1 (no limit) or a limit", false;
  out = value == -1 ? "max" : value > 0 ? std::to_string(value) : "";
  return true;
}

// What UpdateContainer writes: (cgroup file, value) pairs from OCI linux.resources, all checked before any is
// written. `current` reads a file of the container's cgroup (the half of cpu.max or memory.max not being changed).
bool resource_writes(const Json& resources, const std::function<std::string(const char*)>& current,
                     std::vector<std::pair<std::string, std::string>>& writes, std::string& error) {
  if (!resources.is_object()) return error = "resources is not a JSON object", false;
  if (const Json* memory = json_section(resources, "memory", error)) {
    std::optional<int64_t> limit, reservation, swap;
    if (!json_int(*memory, "limit", "resources.memory.limit", limit, error) ||
        !json_int(*memory, "reservation", "resources.memory.reservation", reservation, error) ||
        !json_int(*memory, "swap", "resources.memory.swap", swap, error))
      return false;
    std::string value;
    if (limit && !limit_value(*limit, "resources.memory.limit", value, error)) return false;
    if (!value.empty()) writes.emplace_back("memory.max", value);
    if (reservation && !limit_value(*reservation, "resources.memory.reservation", value, error)) return false;
    if (reservation && !value.empty()) writes.emplace_back("memory.low", value);
    if (swap && *swap == -1) writes.emplace_back("memory.swap.max", "max");
    if (swap && *swap > 0) {  // OCI counts memory + swap; cgroup v2 counts swap alone
      int64_t memory_max = limit && *limit != 0 ? *limit : strtoll(current("memory.max").c_str(), nullptr, 10);  // -1: none
      if (memory_max <= 0 || *swap < memory_max)
        return error = "resources.memory.swap " + std::to_string(*swap) + " must be at least the memory limit (" +
                       (memory_max > 0 ? std::to_string(memory_max) : "none set") + ")", false;
      writes.emplace_back("memory.swap.max", std::to_string(*swap - memory_max));
    } else if (swap && *swap < -1) {
      return error = "resources.memory.swap " + std::to_string(*swap) + " is negative: expected -1 (no limit) or a limit", false;
    }
  }
  if (!error.empty()) return false;
  if (const Json* cpu = json_section(resources, "cpu", error)) {
    std::optional<int64_t> shares, quota, period;
    if (!json_int(*cpu, "shares", "resources.cpu.shares", shares, error) ||
        !json_int(*cpu, "quota", "resources.cpu.quota", quota, error) ||
        !json_int(*cpu, "period", "resources.cpu.period", period, error))
      return false;
    if (shares && *shares != 0) {
      if (*shares < 2 || *shares > 262144)
        return error = "resources.cpu.shares " + std::to_string(*shares) + " is not in 2..262144", false;
      writes.emplace_back("cpu.weight", std::to_string(1 + (*shares - 2) * 9999 / 262142));  // 2..262144 -> 1..10000
    }
    if (period && *period != 0 && (*period < 1000 || *period > 1000000))
      return error = "resources.cpu.period " + std::to_string(*period) + " is not in 1000..1000000 (microseconds)", false;
    if ((quota && *quota != 0) || (period && *period != 0)) {
      std::string now = current("cpu.max");  // "max 100000" or "50000 100000"
      size_t space = now.find(' ');
      std::string old_quota = space == std::string::npos ? "max" : now.substr(0, space);
      std::string old_period = space == std::string::npos ? "100000" : now.substr(space + 1);
      while (!old_period.empty() && old_period.back() == '\n') old_period.pop_back();
      std::string q = !quota || *quota == 0 ? old_quota : *quota < 0 ? "max" : std::to_string(*quota);
      if (quota && *quota > 0 && *quota < 1000)
        return error = "resources.cpu.quota " + std::to_string(*quota) + " is below 1000 (microseconds)", false;
      writes.emplace_back("cpu.max", q + " " + (period && *period != 0 ? std::to_string(*period) : old_period));
    }
  }
  if (!error.empty()) return false;
  if (const Json* pids = json_section(resources, "pids", error)) {
    std::optional<int64_t> limit;
    if (!json_int(*pids, "limit", "resources.pids.limit", limit, error)) return false;
    if (limit) writes.emplace_back("pids.max", *limit > 0 ? std::to_string(*limit) : "max");
  }
  return error.empty();
}

}  // namespace

// The fds a new process gets from crun: pipes (the agent keeps the other ends) or, for a tty, a console socket on
// which crun sends the pty master. Whatever is left open is closed when this goes out of scope.
struct Agent::Stdio {
  int child[3] = {-1, -1, -1};
  int console = -1;
  std::string console_path;
  ~Stdio() {
    for (int& fd : child) close_fd(fd);
    if (console >= 0) {
      close(console);
      unlink(console_path.c_str());
    }
  }
};

Agent::Agent(EventLoop& loop, Options options)
    : loop_(loop),
      options_(std::move(options)),
      server_(loop, [this](Call call, std::string_view service, std::string_view method, std::string_view payload) {
        dispatch(call, service, method, payload);
      }),
      io_buffer_(kMaxStdioBytes) {}

bool Agent::start(const std::string& address, std::string& error) {
  if (prctl(PR_SET_CHILD_SUBREAPER, 1) < 0) return error = "prctl(PR_SET_CHILD_SUBREAPER): " + errno_text(), false;
  if (!setup_cgroups(error)) fprintf(stderr, "hako-agent: warning: %s\n", error.c_str());
  if (!make_dirs(options_.run_dir + "/containers", error)) return false;
  crun_fd_ = sealed_executable(options_.crun, error);
  if (crun_fd_ < 0) fprintf(stderr, "hako-agent: warning: %s; crun will copy itself on every call\n", error.c_str());

  sigset_t chld;
  sigemptyset(&chld);
  sigaddset(&chld, SIGCHLD);
  sigprocmask(SIG_BLOCK, &chld, nullptr);
  int sfd = signalfd(-1, &chld, SFD_NONBLOCK | SFD_CLOEXEC);
  if (sfd < 0) return error = "signalfd: " + errno_text(), false;
  loop_.add(sfd, EPOLLIN, [this, sfd](uint32_t) {
    signalfd_siginfo info;
    while (read(sfd, &info, sizeof info) > 0) {
    }
    reap();
  });

  inotify_fd_ = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
  if (inotify_fd_ < 0) return error = "inotify_init1: " + errno_text(), false;
  loop_.add(inotify_fd_, EPOLLIN, [this](uint32_t) { read_oom_events(); });

  return server_.listen(address, error);
}

// A pure cgroup-v2 hierarchy with the cpu, memory, pids (and io) controllers enabled for containers. The agent
// mounts it only on an empty /sys/fs/cgroup (the guest's case), never over another file system.
bool Agent::setup_cgroups(std::string& error) {
  const std::string& root = options_.cgroup_root;
  struct statfs fs;
  if (statfs(root.c_str(), &fs) < 0) return error = "statfs " + root + ": " + errno_text(), false;
  if (uint32_t(fs.f_type) != kCgroup2Magic) {
    struct stat self, parent;
    if (stat(root.c_str(), &self) < 0 || stat((root + "/..").c_str(), &parent) < 0 || self.st_dev != parent.st_dev)
      return error = root + " holds a file system other than cgroup2: not mounting over it", false;
    if (mount("cgroup2", root.c_str(), "cgroup2", MS_NOSUID | MS_NODEV | MS_NOEXEC, nullptr) < 0)
      return error = "mount cgroup2 on " + root + ": " + errno_text(), false;
  }
  if (!make_dirs(root + "/hako", error)) return false;
  std::string available = " " + read_file(root + "/cgroup.controllers").value_or("") + " ";  // "cpuset cpu io ..."
  std::replace(available.begin(), available.end(), '\n', ' ');
  for (const char* name : kControllers) {
    if (available.find(std::string(" ") + name + " ") == std::string::npos) continue;
    std::string enable = std::string("+") + name, ignored;
    for (const char* dir : {"", "/hako"})
      if (!write_file(root + dir + "/cgroup.subtree_control", enable, ignored))
        fprintf(stderr, "hako-agent: warning: enabling %s: %s\n", name, ignored.c_str());
  }
  return true;
}

void Agent::dispatch(Call call, std::string_view service, std::string_view method, std::string_view payload) {
  if (service != schema::kService)
    return fail(call, code::kUnimplemented, "unknown service '" + std::string(service) + "', expected " + schema::kService);
#define HAKO_DISPATCH(name, Request, Response)                                    \
  if (method == #name) {                                                          \
    Request req;                                                                  \
    DecodeError err;                                                              \
    if (!decode(payload, req, err)) return fail(call, code::kInvalidArgument, err.message); \
    return name(call, req);                                                       \
  }
  HAKO_AGENT_METHODS(HAKO_DISPATCH)
#undef HAKO_DISPATCH
  fail(call, code::kUnimplemented, "unknown method '" + std::string(method) + "' of " + schema::kService);
}

std::vector<Agent::Process*> Agent::processes(Container& c) {
  std::vector<Process*> all = {c.init.get()};
  for (auto& [_, p] : c.execs) all.push_back(p.get());
  return all;
}

Agent::Container* Agent::find_container(Call call, const std::string& id) {
  if (!valid_id(id)) return fail(call, code::kInvalidArgument, bad_id("container_id", id)), nullptr;
  auto it = containers_.find(id);
  if (it == containers_.end()) return fail(call, code::kNotFound, "no container '" + id + "'"), nullptr;
  return it->second.get();
}

Agent::Process* Agent::find_process(Call call, const std::string& container_id, const std::string& exec_id) {
  if (!exec_id.empty() && !valid_id(exec_id)) return fail(call, code::kInvalidArgument, bad_id("exec_id", exec_id)), nullptr;
  Container* c = find_container(call, container_id);
  if (!c) return nullptr;
  if (exec_id.empty()) return c->init.get();
  auto it = c->execs.find(exec_id);
  if (it == c->execs.end())
    return fail(call, code::kNotFound, "no process '" + exec_id + "' in container '" + container_id + "'"), nullptr;
  return it->second.get();
}

bool Agent::crun(const std::vector<std::string>& args, int in, int out, int err, std::string& error) {
  // crun's own messages go to a log file rather than to the container's stderr; on failure they become the error.
  std::string log = options_.run_dir + "/crun.log";
  unlink(log.c_str());
  std::vector<std::string> argv = {options_.crun, "--log=" + log};
  argv.insert(argv.end(), args.begin(), args.end());
  if (run_command(argv, in, out, err, kCrunTimeoutMs, error, crun_fd_)) return true;
  std::string text = read_file(log, 1 << 20).value_or("");
  while (!text.empty() && (text.back() == '\n' || text.back() == ' ')) text.pop_back();
  if (text.size() > 2048) text = "..." + text.substr(text.size() - 2048);
  if (!text.empty()) error += ": " + text;
  return false;
}

bool Agent::crun(const std::vector<std::string>& args, std::string& error) {
  int null = open("/dev/null", O_RDWR | O_CLOEXEC);
  if (null < 0) return error = "open /dev/null: " + errno_text(), false;
  bool ok = crun(args, null, null, null, error);
  close(null);
  return ok;
}

bool Agent::spawn(Process& p, const StdioOptions& options, std::vector<std::string> args, const std::string& pid_file,
                  std::string& error) {
  Stdio stdio;
  p.tty = options.tty;
  if (options.tty) {
    for (int& fd : stdio.child)
      if ((fd = open("/dev/null", O_RDWR | O_CLOEXEC)) < 0) return error = "open /dev/null: " + errno_text(), false;
    // A short path (sun_path holds 108 bytes): ids alone may take 128.
    stdio.console_path = options_.run_dir + "/console-" + std::to_string(++console_count_) + ".sock";
    sockaddr_un sa{};
    sa.sun_family = AF_UNIX;
    if (stdio.console_path.size() >= sizeof sa.sun_path) return error = "run directory path too long", false;
    memcpy(sa.sun_path, stdio.console_path.data(), stdio.console_path.size());
    unlink(stdio.console_path.c_str());
    stdio.console = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);  // crun has sent by the time we look
    if (stdio.console < 0 || bind(stdio.console, reinterpret_cast<sockaddr*>(&sa), sizeof sa) < 0 ||
        listen(stdio.console, 1) < 0)
      return error = "console socket " + stdio.console_path + ": " + errno_text(), false;
    args.insert(args.end() - 1, "--console-socket=" + stdio.console_path);  // before the container id
  } else {
    int fds[2];
    if (options.open_stdin) {
      if (!make_pipe(fds, 1, error)) return false;
      stdio.child[0] = fds[0];
      p.in.fd = fds[1];
    } else if ((stdio.child[0] = open("/dev/null", O_RDONLY | O_CLOEXEC)) < 0) {
      return error = "open /dev/null: " + errno_text(), false;
    }
    if (!make_pipe(fds, 0, error)) return false;
    p.out.fd = fds[0];
    stdio.child[1] = fds[1];
    if (!make_pipe(fds, 0, error)) return false;
    p.err.fd = fds[0];
    stdio.child[2] = fds[1];
  }
  if (!crun(args, stdio.child[0], stdio.child[1], stdio.child[2], error)) return false;
  auto pid = read_pid_file(pid_file);
  if (!pid) return error = "crun wrote no valid pid to " + pid_file, false;
  p.pid = *pid;
  by_pid_[p.pid] = &p;  // registered before the event loop can reap it
  if (options.tty) {
    int master = receive_fd(stdio.console);
    if (master < 0) return error = "crun sent no pty master on " + stdio.console_path, false;
    set_nonblocking(master);
    p.out.fd = master;
    if (options.open_stdin) p.in.fd = fcntl(master, F_DUPFD_CLOEXEC, 0);  // its own epoll registration
  }
  return true;
}

// A VM restored from a template may have a different image behind the same disk than the one the template's
// kernel read at probe time (partition scan): drop the device's page cache so the mount reads the new image.
static bool drop_block_cache(const std::string& device, std::string& error) {
  int fd = open(device.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return error = "open " + device + ": " + errno_text(), false;
  bool ok = ioctl(fd, BLKFLSBUF, 0) == 0;
  if (!ok) error = "flush the page cache of " + device + ": " + errno_text();
  close(fd);
  return ok;
}

// Mounts `source` on `target` (under c.dir) and records it, so unmount_rootfs undoes exactly what succeeded.
static bool mount_recorded(std::vector<std::string>& mounts, const std::string& source, const std::string& target,
                           const char* type, unsigned long flags, const std::string& data, std::string& error) {
  if (mount(source.c_str(), target.c_str(), type, flags, data.empty() ? nullptr : data.c_str()) < 0)
    return error = "mount " + source + (type ? std::string(" (") + type + ")" : "") + " on " + target + ": " + errno_text(), false;
  mounts.push_back(target);
  return true;
}

bool Agent::mount_share(std::string& error) {
  if (share_mounted_) return true;
  const std::string& dir = options_.share_dir;
  if (!make_dirs(dir, error)) return false;
  struct statx sx;
  if (statx(AT_FDCWD, dir.c_str(), 0, STATX_BASIC_STATS, &sx) == 0 && (sx.stx_attributes & STATX_ATTR_MOUNT_ROOT)) {
    share_mounted_ = true;  // something is mounted there already (a development host's bind mount): use it
    return true;
  }
  // nodev: the host refuses device nodes in a share, and none should work if one appeared anyway.
  if (mount(kShareTag, dir.c_str(), "virtiofs", MS_NODEV, nullptr) < 0)
    return error = std::string("mount the shared directory (virtio-fs tag ") + kShareTag + ") on " + dir + ": " + errno_text(), false;
  share_mounted_ = true;
  fprintf(stderr, "hako-agent: mounted the shared directory on %s\n", dir.c_str());
  return true;
}

bool Agent::bind_shared(Container& c, const std::string& path, const std::string& target, std::string& error) {
  if (!mount_share(error)) return false;
  int share = open(options_.share_dir.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC);
  if (share < 0) return error = "open " + options_.share_dir + ": " + errno_text(), false;
  // Beneath the share and without symlinks: what a container wrote there earlier cannot redirect another's root.
  open_how how{};
  how.flags = O_PATH | O_DIRECTORY | O_CLOEXEC;
  how.resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_XDEV;
  int dir = int(syscall(SYS_openat2, share, path.empty() ? "." : path.c_str(), &how, sizeof how));
  close(share);
  if (dir < 0) return error = "rootfs.path '" + path + "' in the shared directory: " + errno_text(), false;
  bool ok = mount_recorded(c.mounts, "/proc/self/fd/" + std::to_string(dir), target, nullptr, MS_BIND, "", error);
  close(dir);
  return ok;
}

bool Agent::mount_rootfs(Container& c, const Rootfs& rootfs, std::string& error) {
  std::string lower = c.dir + "/lower", rw = c.dir + "/rw", root = c.dir + "/rootfs";
  if (!make_dirs(root, error)) return false;
  bool shared = rootfs.fstype == "virtiofs";
  if (shared && !rootfs.overlay) return bind_shared(c, rootfs.path, root, error);  // writes reach the host
  if (!make_dirs(lower, error) || !make_dirs(rw, error)) return false;
  if (shared) {
    if (!bind_shared(c, rootfs.path, lower, error)) return false;
  } else if (!drop_block_cache(rootfs.device, error) ||
             !mount_recorded(c.mounts, rootfs.device, lower, rootfs.fstype.c_str(), MS_RDONLY, "", error)) {
    return false;
  }
  if (!mount_recorded(c.mounts, "tmpfs", rw, "tmpfs", 0, "mode=0755", error)) return false;
  if (!make_dirs(rw + "/upper", error) || !make_dirs(rw + "/work", error)) return false;
  std::string data = "lowerdir=" + lower + ",upperdir=" + rw + "/upper,workdir=" + rw + "/work";
  return mount_recorded(c.mounts, "overlay", root, "overlay", 0, data, error);
}

void Agent::unmount_rootfs(Container& c) {
  for (; !c.mounts.empty(); c.mounts.pop_back()) {
    const std::string& path = c.mounts.back();
    if (umount2(path.c_str(), 0) < 0 && umount2(path.c_str(), MNT_DETACH) < 0)
      fprintf(stderr, "hako-agent: umount %s: %s\n", path.c_str(), errno_text().c_str());
  }
}

void Agent::Version(Call call, VersionRequest&) {
  VersionResponse r;
  r.agent_version = HAKO_AGENT_VERSION;
  utsname u;
  if (uname(&u) == 0) r.kernel_release = u.release;
  r.protocol = kProtocol;
  reply(call, r);
}

void Agent::CreateContainer(Call call, CreateContainerRequest& req) {
  const std::string& id = req.container_id;
  if (!valid_id(id)) return fail(call, code::kInvalidArgument, bad_id("container_id", id));
  if (containers_.count(id)) return fail(call, code::kAlreadyExists, "container '" + id + "' already exists");
  if (!req.has_rootfs) return fail(call, code::kInvalidArgument, "rootfs is required");
  const Rootfs& rootfs = req.rootfs;
  std::string error;
  if (!check_rootfs(rootfs, error)) return fail(call, code::kInvalidArgument, error);
  Json spec;
  if (req.oci_spec.empty()) return fail(call, code::kInvalidArgument, "oci_spec is empty");
  if (!parse_json(req.oci_spec, spec, error)) return fail(call, code::kInvalidArgument, "oci_spec is not valid JSON: " + error);
  if (!spec.is_object()) return fail(call, code::kInvalidArgument, "oci_spec is not a JSON object");
  Json* process = spec.find("process");
  if (!process) return fail(call, code::kInvalidArgument, "oci_spec has no \"process\"");
  if (!check_process(*process, "oci_spec \"process\"", error)) return fail(call, code::kInvalidArgument, error);
  for (const char* key : {"root", "linux"}) {
    Json* value = spec.find(key);
    if (value && !value->is_object())
      return fail(call, code::kInvalidArgument, std::string("oci_spec \"") + key + "\" is not an object");
    if (!value) spec.set(key, Json::object());
  }

  if (rootfs.fstype != "virtiofs" && uses_share(spec, options_.share_dir) && !mount_share(error))
    return fail(call, code::kInternal, "creating container '" + id + "': " + error);

  auto c = std::make_unique<Container>();
  c->id = id;
  c->dir = options_.run_dir + "/containers/" + id;
  c->cgroup_dir = options_.cgroup_root + "/hako/" + id;
  // The agent owns these keys: the overlay it mounts, the cgroup it watches, and the stdio it wires. (Looked up
  // again here: adding members above may have moved them.)
  spec.find("root")->set("path", Json::string(c->dir + "/rootfs"));
  spec.find("linux")->set("cgroupsPath", Json::string("/hako/" + id));
  spec.find("process")->set("terminal", Json::from_bool(req.stdio.tty));

  c->init = std::make_unique<Process>();
  Process& init = *c->init;
  init.container_id = id;
  long started = monotonic_ms(), mounted = 0;
  bool ok = make_dirs(c->dir, error) && mount_rootfs(*c, rootfs, error) && (mounted = monotonic_ms()) &&
            write_file(c->dir + "/config.json", to_json(spec), error) &&
            spawn(init, req.stdio, {"create", "--bundle=" + c->dir, "--pid-file=" + c->dir + "/init.pid", id},
                  c->dir + "/init.pid", error);
  if (!ok) {
    if (init.pid) {  // crun created it but something after failed: do not leave it behind
      std::string ignored;
      crun({"delete", "--force", id}, ignored);
      by_pid_.erase(init.pid);
    }
    close_process(init, "create failed");
    unmount_rootfs(*c);
    remove_tree(c->dir);
    return fail(call, code::kInternal, "creating container '" + id + "': " + error);
  }
  c->oom_watch = inotify_add_watch(inotify_fd_, (c->cgroup_dir + "/memory.events").c_str(), IN_MODIFY);
  CreateContainerResponse r;
  r.pid = uint32_t(init.pid);
  containers_.emplace(id, std::move(c));
  fprintf(stderr, "hako-agent: created container %s (pid %u): rootfs mounted in %ld ms, crun create %ld ms\n", id.c_str(),
          r.pid, mounted - started, monotonic_ms() - mounted);
  reply(call, r);
}

void Agent::StartContainer(Call call, StartContainerRequest& req) {
  Container* c = find_container(call, req.container_id);
  if (!c) return;
  if (c->started) return fail(call, code::kFailedPrecondition, "container '" + c->id + "' is already started");
  if (c->paused) return fail(call, code::kFailedPrecondition, "container '" + c->id + "' is paused: resume it first");
  if (c->init->exited) return fail(call, code::kFailedPrecondition, "init process of container '" + c->id + "' has exited");
  std::string error;
  if (!crun({"start", c->id}, error)) return fail(call, code::kInternal, "starting container '" + c->id + "': " + error);
  c->started = true;
  reply(call, StartContainerResponse{});
}

// crun links /dev/ptmx to pts/ptmx only in containers created with a terminal, and `crun exec --tty` opens it: make the
// link in the container's /dev (resolved inside its root, so links the container made cannot lead elsewhere).
static void ensure_ptmx(pid_t init_pid) {
  int root = open(("/proc/" + std::to_string(init_pid) + "/root").c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC);
  if (root < 0) return;
  open_how how{};
  how.flags = O_PATH | O_DIRECTORY | O_CLOEXEC;
  how.resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS;
  int dev = int(syscall(SYS_openat2, root, "dev", &how, sizeof how));
  if (dev >= 0) {
    symlinkat("pts/ptmx", dev, "ptmx");  // EEXIST when crun or the image made one: fine
    close(dev);
  }
  close(root);
}

void Agent::ExecProcess(Call call, ExecProcessRequest& req) {
  if (!valid_id(req.exec_id)) return fail(call, code::kInvalidArgument, bad_id("exec_id", req.exec_id));
  Container* c = find_container(call, req.container_id);
  if (!c) return;
  if (!c->started || c->init->exited)
    return fail(call, code::kFailedPrecondition, "container '" + c->id + "' is not running");
  if (c->paused) return fail(call, code::kFailedPrecondition, "container '" + c->id + "' is paused: resume it first");
  if (c->execs.count(req.exec_id))
    return fail(call, code::kAlreadyExists, "process '" + req.exec_id + "' already exists in container '" + c->id + "'");
  Json process;
  std::string error;
  if (req.process.empty()) return fail(call, code::kInvalidArgument, "process is empty");
  if (!parse_json(req.process, process, error)) return fail(call, code::kInvalidArgument, "process is not valid JSON: " + error);
  if (!check_process(process, "process", error)) return fail(call, code::kInvalidArgument, error);
  process.set("terminal", Json::from_bool(req.stdio.tty));
  if (req.stdio.tty) ensure_ptmx(c->init->pid);

  auto p = std::make_unique<Process>();
  p->container_id = c->id;
  p->exec_id = req.exec_id;
  std::string file = c->dir + "/exec-" + req.exec_id + ".json", pid_file = c->dir + "/exec-" + req.exec_id + ".pid";
  bool ok = write_file(file, to_json(process), error) &&
            spawn(*p, req.stdio, {"exec", "--process=" + file, "--detach", "--pid-file=" + pid_file, c->id}, pid_file, error);
  unlink(file.c_str());
  unlink(pid_file.c_str());
  if (!ok) {
    if (p->pid) by_pid_.erase(p->pid);  // crun ran it: the reaper still collects it, nobody waits
    close_process(*p, "exec failed");
    return fail(call, code::kInternal, "exec in container '" + c->id + "': " + error);
  }
  ExecProcessResponse r;
  r.pid = uint32_t(p->pid);
  c->execs.emplace(req.exec_id, std::move(p));
  reply(call, r);
}

void Agent::SignalProcess(Call call, SignalProcessRequest& req) {
  if (req.signal < 1 || req.signal > uint32_t(SIGRTMAX))
    return fail(call, code::kInvalidArgument, "signal " + std::to_string(req.signal) + " is not in 1.." + std::to_string(SIGRTMAX));
  Process* p = find_process(call, req.container_id, req.exec_id);
  if (!p) return;
  if (req.all) {
    if (!req.exec_id.empty()) return fail(call, code::kInvalidArgument, "all is only valid for the init process (exec_id \"\")");
    std::string error;
    if (!crun({"kill", "--all", req.container_id, std::to_string(req.signal)}, error))
      return fail(call, code::kInternal, "signalling container '" + req.container_id + "': " + error);
    return reply(call, SignalProcessResponse{});
  }
  // The agent reaps its processes itself, so an unreaped pid cannot have been reused.
  if (p->exited) return fail(call, code::kFailedPrecondition, process_name(req.container_id, req.exec_id) + " has exited");
  if (kill(p->pid, int(req.signal)) < 0)
    return fail(call, code::kInternal, "kill(" + std::to_string(p->pid) + ", " + std::to_string(req.signal) + "): " + errno_text());
  reply(call, SignalProcessResponse{});
}

void Agent::WaitProcess(Call call, WaitProcessRequest& req) {
  Process* p = find_process(call, req.container_id, req.exec_id);
  if (!p) return;
  if (p->exited) return reply(call, p->result);
  p->waiters.push_back(call);
  park_deadline(call);
}

void Agent::WriteStdin(Call call, WriteStdinRequest& req) {
  if (req.data.size() > kMaxStdioBytes)
    return fail(call, code::kInvalidArgument, "data of " + std::to_string(req.data.size()) + " bytes exceeds 1 MiB");
  Process* p = find_process(call, req.container_id, req.exec_id);
  if (!p) return;
  if (p->in.fd < 0 || p->in.close_when_drained)
    return fail(call, code::kFailedPrecondition, "stdin of " + process_name(req.container_id, req.exec_id) + " is not open");
  if (req.data.empty()) return reply(call, WriteStdinResponse{});
  p->in.writes.push_back(PendingWrite{call, std::move(req.data)});
  serve(p->in);
  park_deadline(call);
}

void Agent::ReadStdout(Call call, ReadStreamRequest& req) {
  if (req.max_bytes < 1 || req.max_bytes > kMaxStdioBytes)
    return fail(call, code::kInvalidArgument, "max_bytes " + std::to_string(req.max_bytes) + " is not in 1..1048576");
  Process* p = find_process(call, req.container_id, req.exec_id);
  if (!p) return;
  p->out.reads.push_back(PendingRead{call, req.max_bytes});
  serve(p->out);
  park_deadline(call);
}

void Agent::ReadStderr(Call call, ReadStreamRequest& req) {
  if (req.max_bytes < 1 || req.max_bytes > kMaxStdioBytes)
    return fail(call, code::kInvalidArgument, "max_bytes " + std::to_string(req.max_bytes) + " is not in 1..1048576");
  Process* p = find_process(call, req.container_id, req.exec_id);
  if (!p) return;
  p->err.reads.push_back(PendingRead{call, req.max_bytes});  // a tty has no stderr: answered with end of stream
  serve(p->err);
  park_deadline(call);
}

void Agent::CloseStdin(Call call, CloseStdinRequest& req) {
  Process* p = find_process(call, req.container_id, req.exec_id);
  if (!p) return;
  if (p->tty && p->in.fd >= 0) {
    // The pty stays open (it is also stdout): send the terminal's end-of-file character instead.
    p->in.writes.push_back(PendingWrite{Call{}, "\x04"});
  } else {
    p->in.close_when_drained = true;
  }
  serve(p->in);
  reply(call, CloseStdinResponse{});
}

void Agent::ResizeTty(Call call, ResizeTtyRequest& req) {
  if (req.rows < 1 || req.rows > 65535 || req.cols < 1 || req.cols > 65535)
    return fail(call, code::kInvalidArgument, "rows and cols must be in 1..65535");
  Process* p = find_process(call, req.container_id, req.exec_id);
  if (!p) return;
  if (!p->tty || p->out.fd < 0)
    return fail(call, code::kFailedPrecondition, process_name(req.container_id, req.exec_id) + " has no open tty");
  winsize ws{};
  ws.ws_row = uint16_t(req.rows);
  ws.ws_col = uint16_t(req.cols);
  if (ioctl(p->out.fd, TIOCSWINSZ, &ws) < 0) return fail(call, code::kInternal, "TIOCSWINSZ: " + errno_text());
  reply(call, ResizeTtyResponse{});
}

void Agent::StatsContainer(Call call, StatsContainerRequest& req) {
  Container* c = find_container(call, req.container_id);
  if (!c) return;
  auto file = [&](const char* name) { return read_file(c->cgroup_dir + "/" + name, 65536).value_or(""); };
  StatsContainerResponse r;
  std::string cpu = file("cpu.stat");
  r.cpu_usage_usec = keyed_value(cpu, "usage_usec");
  r.cpu_user_usec = keyed_value(cpu, "user_usec");
  r.cpu_system_usec = keyed_value(cpu, "system_usec");
  r.memory_current = strtoull(file("memory.current").c_str(), nullptr, 10);
  r.memory_max = strtoull(file("memory.max").c_str(), nullptr, 10);  // "max" reads as 0
  r.pids_current = strtoull(file("pids.current").c_str(), nullptr, 10);
  r.oom_kills = keyed_value(file("memory.events"), "oom_kill");
  reply(call, r);
}

void Agent::ListProcesses(Call call, ListProcessesRequest& req) {
  Container* c = find_container(call, req.container_id);
  if (!c) return;
  auto procs = read_file(c->cgroup_dir + "/cgroup.procs", 4 << 20);
  if (!procs) return fail(call, code::kInternal, "reading " + c->cgroup_dir + "/cgroup.procs: " + errno_text());
  ListProcessesResponse r;
  const char* p = procs->c_str();
  for (char* end;; p = end) {
    unsigned long pid = strtoul(p, &end, 10);
    if (end == p) break;
    r.pids.push_back(uint32_t(pid));
  }
  reply(call, r);
}

void Agent::RemoveContainer(Call call, RemoveContainerRequest& req) {
  Container* c = find_container(call, req.container_id);
  if (!c) return;
  std::string error, ignored;
  if (c->paused) write_file(c->cgroup_dir + "/cgroup.freeze", "0", ignored);  // frozen tasks die of SIGKILL, but exit faster thawed
  if (!crun({"delete", "--force", c->id}, error))
    return fail(call, code::kInternal, "deleting container '" + c->id + "': " + error);
  // crun killed everything; collect the exits (bounded: a process stuck in the kernel must not hang the agent).
  std::vector<Process*> all = processes(*c);
  for (int i = 0; i < 200; i++) {
    bool waiting = false;
    for (Process* p : all) {
      int status;
      if (!p->exited && waitpid(p->pid, &status, WNOHANG) == p->pid) exited(*p, status);
      waiting |= !p->exited;
    }
    if (!waiting) break;
    timespec ts{0, 10'000'000};
    nanosleep(&ts, nullptr);
  }
  for (Process* p : all) close_process(*p, "container '" + c->id + "' was removed");
  if (c->oom_watch >= 0) inotify_rm_watch(inotify_fd_, c->oom_watch);
  unmount_rootfs(*c);
  if (rmdir(c->cgroup_dir.c_str()) < 0 && errno != ENOENT)
    fprintf(stderr, "hako-agent: rmdir %s: %s\n", c->cgroup_dir.c_str(), errno_text().c_str());
  remove_tree(c->dir);
  std::string id = c->id;
  containers_.erase(id);
  fprintf(stderr, "hako-agent: removed container %s\n", id.c_str());
  reply(call, RemoveContainerResponse{});
}

bool Agent::freeze(Container& c, bool frozen, std::string& error) {
  const char* want = frozen ? "1" : "0";
  if (!write_file(c.cgroup_dir + "/cgroup.freeze", want, error)) return false;
  // Bounded, like RemoveContainer's wait: the agent is single-threaded, and freezing normally takes milliseconds.
  for (long deadline = monotonic_ms() + kFreezeTimeoutMs;;) {
    auto events = read_file(c.cgroup_dir + "/cgroup.events", 4096);
    if (!events) return error = "reading " + c.cgroup_dir + "/cgroup.events: " + errno_text(), false;
    if (keyed_value(*events, "frozen") == (frozen ? 1u : 0u)) return true;
    if (monotonic_ms() > deadline)
      return error = c.cgroup_dir + " did not become " + (frozen ? "frozen" : "thawed") + " within " +
                     std::to_string(kFreezeTimeoutMs) + " ms", false;
    timespec ts{0, 2'000'000};
    nanosleep(&ts, nullptr);
  }
}

void Agent::PauseContainer(Call call, PauseContainerRequest& req) {
  Container* c = find_container(call, req.container_id);
  if (!c) return;
  if (c->init->exited) return fail(call, code::kFailedPrecondition, "init process of container '" + c->id + "' has exited");
  if (c->paused) return fail(call, code::kFailedPrecondition, "container '" + c->id + "' is already paused");
  std::string error, ignored;
  if (!freeze(*c, true, error)) {
    freeze(*c, false, ignored);  // not half frozen: the container runs on as before
    return fail(call, code::kInternal, "pausing container '" + c->id + "': " + error);
  }
  c->paused = true;
  reply(call, PauseContainerResponse{});
}

void Agent::ResumeContainer(Call call, ResumeContainerRequest& req) {
  Container* c = find_container(call, req.container_id);
  if (!c) return;
  if (!c->paused) return fail(call, code::kFailedPrecondition, "container '" + c->id + "' is not paused");
  std::string error;
  if (!freeze(*c, false, error)) return fail(call, code::kInternal, "resuming container '" + c->id + "': " + error);
  c->paused = false;
  reply(call, ResumeContainerResponse{});
}

void Agent::UpdateContainer(Call call, UpdateContainerRequest& req) {
  Container* c = find_container(call, req.container_id);
  if (!c) return;
  if (c->init->exited) return fail(call, code::kFailedPrecondition, "init process of container '" + c->id + "' has exited");
  Json resources;
  std::string error;
  if (req.resources.empty()) return fail(call, code::kInvalidArgument, "resources is empty");
  if (!parse_json(req.resources, resources, error)) return fail(call, code::kInvalidArgument, "resources is not valid JSON: " + error);
  std::vector<std::pair<std::string, std::string>> writes;
  auto current = [&](const char* name) { return read_file(c->cgroup_dir + "/" + name, 4096).value_or(""); };
  if (!resource_writes(resources, current, writes, error)) return fail(call, code::kInvalidArgument, error);
  for (const auto& [file, value] : writes)
    if (!write_file(c->cgroup_dir + "/" + file, value, error))
      return fail(call, code::kInternal, "updating container '" + c->id + "': " + error);
  reply(call, UpdateContainerResponse{});
}

void Agent::GetOOMEvent(Call call, GetOOMEventRequest&) {
  oom_waiters_.push_back(call);
  deliver_oom_events();
  park_deadline(call);
}

void Agent::park_deadline(Call call) {
  if (!call.deadline || (next_deadline_ && next_deadline_ <= call.deadline)) return;  // also when already answered:
  next_deadline_ = call.deadline;                                                    // a spare wakeup is harmless
  loop_.set_timer(next_deadline_, [this] { expire_calls(); });
}

void Agent::expire_calls() {
  int64_t now = monotonic_ns(), next = 0;
  // Removes the expired calls of `queue` (answering them) and keeps track of the next deadline.
  auto sweep = [&](auto& queue, auto call_of, auto expirable) {
    std::erase_if(queue, [&](const auto& entry) {
      Call call = call_of(entry);
      if (!call.deadline || !expirable(entry)) return false;
      if (call.deadline > now) {
        next = next ? std::min(next, call.deadline) : call.deadline;
        return false;
      }
      fail(call, code::kDeadlineExceeded, "deadline exceeded while waiting");
      return true;
    });
  };
  auto plain = [](const Call& c) { return c; };
  auto always = [](const auto&) { return true; };
  for (auto& [_, c] : containers_) {
    for (Process* p : processes(*c)) {
      sweep(p->waiters, plain, always);
      sweep(p->out.reads, [](const PendingRead& r) { return r.call; }, always);
      sweep(p->err.reads, [](const PendingRead& r) { return r.call; }, always);
      // Only writes not yet begun: part of a chunk must not be written with the call answered as failed.
      sweep(p->in.writes, [](const PendingWrite& w) { return w.call; }, [](const PendingWrite& w) { return w.done == 0; });
      for (Stream* s : {&p->in, &p->out, &p->err}) update_watch(*s);
    }
  }
  sweep(oom_waiters_, plain, always);
  next_deadline_ = next;
  loop_.set_timer(next, [this] { expire_calls(); });
}

void Agent::serve(Stream& s) {
  serve_writes(s);
  serve_reads(s);
  update_watch(s);
}

void Agent::serve_reads(Stream& s) {
  while (!s.reads.empty()) {
    PendingRead r = s.reads.front();
    if (!server_.alive(r.call)) {  // its host is gone: leave the data for the next reader
      s.reads.pop_front();
      continue;
    }
    ssize_t n = s.fd < 0 ? 0 : read(s.fd, io_buffer_.data(), r.max_bytes);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && errno == EAGAIN) return;
    if (n < 0 && errno != EIO)  // EIO: the pty's other side is closed, the end of a tty's output
      fprintf(stderr, "hako-agent: reading process output: %s\n", errno_text().c_str());
    s.reads.pop_front();
    ReadStreamResponse resp;  // empty: end of stream
    if (n > 0) resp.data.assign(io_buffer_.data(), size_t(n));
    reply(r.call, resp);
    if (n <= 0 && s.fd >= 0) {  // the end: free the fd (later reads see fd -1, end of stream, at once)
      loop_.remove(s.token);   // before close: a tty master's dup (stdin) would keep the epoll entry alive
      s.token = 0;
      close_fd(s.fd);
    }
  }
}

void Agent::serve_writes(Stream& s) {
  while (!s.writes.empty() && s.fd >= 0) {
    PendingWrite& w = s.writes.front();
    if (w.call.conn && !server_.alive(w.call)) {
      s.writes.pop_front();
      continue;
    }
    ssize_t n = write(s.fd, w.data.data() + w.done, w.data.size() - w.done);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && errno == EAGAIN) return;
    if (n < 0) return close_stream(s, "the process closed its stdin (" + errno_text() + ")");
    w.done += size_t(n);
    if (w.done < w.data.size()) continue;
    WriteStdinResponse r;
    r.written = uint32_t(w.data.size());
    if (w.call.conn) reply(w.call, r);
    s.writes.pop_front();
  }
  if (s.writes.empty() && s.close_when_drained) close_stream(s, "stdin was closed");
}

void Agent::update_watch(Stream& s) {
  uint32_t events = (s.reads.empty() ? 0 : uint32_t(EPOLLIN)) | (s.writes.empty() ? 0 : uint32_t(EPOLLOUT));
  if (s.fd < 0 || !events) {
    loop_.remove(s.token);
    s.token = 0;
  } else if (s.token) {
    loop_.modify(s.token, events);
  } else {
    s.token = loop_.add(s.fd, events, [this, &s](uint32_t) { serve(s); });
  }
}

// Closes the agent's end of a stream: parked writes fail with `why`, parked reads get end of stream.
void Agent::close_stream(Stream& s, const std::string& why) {
  loop_.remove(s.token);
  s.token = 0;
  close_fd(s.fd);
  s.close_when_drained = false;
  for (auto& w : s.writes)
    if (w.call.conn) fail(w.call, code::kFailedPrecondition, why);
  s.writes.clear();
  serve_reads(s);
}

void Agent::close_process(Process& p, const std::string& why) {
  for (Stream* s : {&p.in, &p.out, &p.err}) close_stream(*s, why);
  for (Call w : p.waiters) fail(w, code::kFailedPrecondition, why + " before " + process_name(p.container_id, p.exec_id) + " exited");
  p.waiters.clear();
}

void Agent::reap() {
  for (;;) {
    int status;
    pid_t pid = waitpid(-1, &status, WNOHANG);
    if (pid <= 0) return;
    auto it = by_pid_.find(pid);
    if (it != by_pid_.end()) exited(*it->second, status);  // others: crun's helpers, orphans nobody waits for
  }
}

void Agent::exited(Process& p, int status) {
  by_pid_.erase(p.pid);
  p.exited = true;
  if (WIFSIGNALED(status)) {
    p.result.signal = uint32_t(WTERMSIG(status));
    p.result.exit_code = 128 + WTERMSIG(status);
  } else {
    p.result.exit_code = WEXITSTATUS(status);
  }
  auto it = containers_.find(p.container_id);
  if (it != containers_.end()) {
    check_oom(*it->second);
    p.result.oom_killed = it->second->oom_kills > 0;
  }
  fprintf(stderr, "hako-agent: %s (pid %d) exited: code %d\n", process_name(p.container_id, p.exec_id).c_str(), p.pid,
          p.result.exit_code);
  close_stream(p.in, process_name(p.container_id, p.exec_id) + " has exited");  // output stays until read
  for (Call w : p.waiters) reply(w, p.result);
  p.waiters.clear();
}

void Agent::check_oom(Container& c) {
  uint64_t kills = keyed_value(read_file(c.cgroup_dir + "/memory.events", 65536).value_or(""), "oom_kill");
  if (kills <= c.oom_kills) return;
  c.oom_kills = kills;
  if (oom_events_.size() == kMaxPendingOomEvents) oom_events_.pop_front();
  oom_events_.push_back(c.id);
  deliver_oom_events();
}

void Agent::read_oom_events() {
  alignas(inotify_event) char buf[4096];
  while (read(inotify_fd_, buf, sizeof buf) > 0) {
  }
  // Which file changed matters little: there are few containers, and memory.events is tiny.
  for (auto& [_, c] : containers_) check_oom(*c);
}

void Agent::deliver_oom_events() {
  while (!oom_events_.empty() && !oom_waiters_.empty()) {
    Call w = oom_waiters_.front();
    oom_waiters_.pop_front();
    if (!server_.alive(w)) continue;
    GetOOMEventResponse r;
    r.container_id = oom_events_.front();
    oom_events_.pop_front();
    reply(w, r);
  }
}
