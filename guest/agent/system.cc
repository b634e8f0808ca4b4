#include "system.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/sendfile.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <dirent.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <ctime>

std::string errno_text() { return strerror(errno); }

std::optional<std::string> read_file(const std::string& path, size_t limit) {
  int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return std::nullopt;
  std::string data;
  char buf[4096];
  for (;;) {
    ssize_t n = read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n == 0) break;
    if (n < 0 || data.size() + size_t(n) > limit) {
      close(fd);
      return std::nullopt;
    }
    data.append(buf, size_t(n));
  }
  close(fd);
  return data;
}

bool write_file(const std::string& path, const std::string& data, std::string& error) {
  int fd = open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) return error = "open " + path + ": " + errno_text(), false;
  for (size_t done = 0; done < data.size();) {
    ssize_t n = write(fd, data.data() + done, data.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      error = "write " + path + ": " + errno_text();
      close(fd);
      return false;
    }
    done += size_t(n);
  }
  close(fd);
  return true;
}

bool make_dirs(const std::string& path, std::string& error) {
  for (size_t i = 1; i <= path.size(); i++) {
    if (i < path.size() && path[i] != '/') continue;
    std::string prefix = path.substr(0, i);
    if (mkdir(prefix.c_str(), 0755) < 0 && errno != EEXIST) return error = "mkdir " + prefix + ": " + errno_text(), false;
  }
  return true;
}

namespace {
bool remove_under(int dirfd, dev_t dev, const std::string& path) {
  DIR* d = fdopendir(dirfd);
  if (!d) {
    close(dirfd);
    return false;
  }
  bool ok = true;
  while (dirent* e = readdir(d)) {
    if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
    struct stat st;
    if (fstatat(dirfd, e->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0) continue;
    if (S_ISDIR(st.st_mode)) {
      if (st.st_dev != dev) {  // still a mount point: never delete into it
        fprintf(stderr, "hako-agent: not removing %s/%s: a file system is mounted there\n", path.c_str(), e->d_name);
        ok = false;
        continue;
      }
      int sub = openat(dirfd, e->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
      if (sub < 0 || !remove_under(sub, dev, path + "/" + e->d_name)) {
        ok = false;
        continue;
      }
    }
    if (unlinkat(dirfd, e->d_name, S_ISDIR(st.st_mode) ? AT_REMOVEDIR : 0) < 0) ok = false;
  }
  closedir(d);
  return ok;
}
}  // namespace

bool remove_tree(const std::string& dir) {
  int fd = open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  struct stat st;
  if (fd < 0 || fstat(fd, &st) < 0) {
    if (fd >= 0) close(fd);
    return errno == ENOENT;
  }
  bool ok = remove_under(fd, st.st_dev, dir) && rmdir(dir.c_str()) == 0;
  if (!ok) fprintf(stderr, "hako-agent: could not remove all of %s\n", dir.c_str());
  return ok;
}

uint64_t keyed_value(const std::string& text, const std::string& key) {
  for (size_t pos = 0; pos < text.size();) {
    size_t eol = text.find('\n', pos);
    if (eol == std::string::npos) eol = text.size();
    if (text.compare(pos, key.size(), key) == 0 && pos + key.size() < eol && text[pos + key.size()] == ' ')
      return strtoull(text.c_str() + pos + key.size() + 1, nullptr, 10);
    pos = eol + 1;
  }
  return 0;
}

bool run_command(const std::vector<std::string>& argv, int in, int out, int err, int timeout_ms, std::string& error,
                 int exec_fd) {
  std::vector<char*> args;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  pid_t pid = fork();
  if (pid < 0) return error = "fork: " + errno_text(), false;
  if (pid == 0) {
    // Move the stdio fds out of 0..2 first so that dup2 cannot clobber one with another.
    int fds[3] = {fcntl(in, F_DUPFD_CLOEXEC, 3), fcntl(out, F_DUPFD_CLOEXEC, 3), fcntl(err, F_DUPFD_CLOEXEC, 3)};
    for (int i = 0; i < 3; i++)
      if (fds[i] < 0 || dup2(fds[i], i) < 0) _exit(127);
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, nullptr);
    signal(SIGPIPE, SIG_DFL);
    if (exec_fd >= 0)
      syscall(SYS_execveat, exec_fd, "", args.data(), environ, AT_EMPTY_PATH);
    else
      execv(args[0], args.data());
    dprintf(2, "hako-agent: exec %s: %s\n", args[0], strerror(errno));
    _exit(127);
  }
  sigset_t chld;
  sigemptyset(&chld);
  sigaddset(&chld, SIGCHLD);
  timespec start, now;
  clock_gettime(CLOCK_MONOTONIC, &start);
  bool timed_out = false;
  int status;
  for (;;) {
    pid_t done = waitpid(pid, &status, WNOHANG);
    if (done == pid) break;
    if (done < 0 && errno != EINTR) return error = "waitpid " + argv[0] + ": " + errno_text(), false;
    clock_gettime(CLOCK_MONOTONIC, &now);
    long left_ms = timeout_ms - ((now.tv_sec - start.tv_sec) * 1000 + (now.tv_nsec - start.tv_nsec) / 1'000'000);
    if (left_ms <= 0 && !timed_out) {
      timed_out = true;
      kill(pid, SIGKILL);
      left_ms = 1000;
    }
    timespec wait{0, std::min(left_ms, 100L) * 1'000'000};  // a bounded nap: the SIGCHLD may have come and gone
    sigtimedwait(&chld, nullptr, &wait);
  }
  raise(SIGCHLD);  // give back what sigtimedwait took: other children may have exited meanwhile
  if (WIFEXITED(status) && WEXITSTATUS(status) == 0) return true;
  std::string command;
  for (const auto& a : argv) command += (command.empty() ? "" : " ") + a;
  error = "'" + command + "' " +
          (timed_out ? "did not finish within " + std::to_string(timeout_ms / 1000) + " s"
           : WIFEXITED(status) ? "exited with status " + std::to_string(WEXITSTATUS(status))
                               : "was killed by signal " + std::to_string(WTERMSIG(status)));
  return false;
}

long monotonic_ms() {
  timespec now;
  clock_gettime(CLOCK_MONOTONIC, &now);
  return now.tv_sec * 1000 + now.tv_nsec / 1'000'000;
}

int sealed_executable(const std::string& path, std::string& error) {
  int in = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (in < 0) return error = "open " + path + ": " + errno_text(), -1;
  struct stat st;
  int memfd = fstat(in, &st) == 0 ? memfd_create("crun", MFD_CLOEXEC | MFD_ALLOW_SEALING) : -1;
  bool ok = memfd >= 0;
  for (off_t offset = 0; ok && offset < st.st_size;) ok = sendfile(memfd, in, &offset, st.st_size - offset) > 0;
  // Exactly the seals crun checks for (no F_SEAL_EXEC and the like).
  ok = ok && fcntl(memfd, F_ADD_SEALS, F_SEAL_SEAL | F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE) == 0;
  if (!ok) error = "copy " + path + " into a sealed memfd: " + errno_text();
  close(in);
  if (!ok && memfd >= 0) close(memfd);
  return ok ? memfd : -1;
}

void set_nonblocking(int fd) { fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK); }

bool make_pipe(int fds[2], int nonblocking_end, std::string& error) {
  if (pipe2(fds, O_CLOEXEC) < 0) return error = "pipe: " + errno_text(), false;
  set_nonblocking(fds[nonblocking_end]);
  return true;
}
