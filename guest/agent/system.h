// Small wrappers over the system calls the agent needs: files, directories, mounts, child processes.
// Errors come back as strings naming the path or command, for status messages.
#pragma once

#include <sys/types.h>

#include <optional>
#include <string>
#include <vector>

std::string errno_text();  // strerror(errno)
long monotonic_ms();       // CLOCK_MONOTONIC in milliseconds, for the durations the agent logs

std::optional<std::string> read_file(const std::string& path, size_t limit = 1 << 20);
bool write_file(const std::string& path, const std::string& data, std::string& error);
bool make_dirs(const std::string& path, std::string& error);
// Removes `dir` and what is under it without crossing into other mounts; false (logged) on failure.
bool remove_tree(const std::string& dir);
// The number after "key " in a flat keyed file such as cpu.stat or memory.events; 0 if absent.
uint64_t keyed_value(const std::string& text, const std::string& key);

// Runs argv[0] (a full path) with fds in/out/err as its stdio and waits for it, killing it after `timeout_ms`. True if
// it exited 0; otherwise `error` describes how it ended. The child gets default signal handling and an empty signal
// mask. SIGCHLD must be blocked in the caller; it stays pending afterwards (for the caller's signalfd), also when
// another child's exit arrived meanwhile.
// With `exec_fd` >= 0 the program run is that file (execveat), argv[0] only names it.
bool run_command(const std::vector<std::string>& argv, int in, int out, int err, int timeout_ms, std::string& error,
                 int exec_fd = -1);

// A sealed memfd copy of the executable at `path` (-1 and `error` on failure). crun and runc re-execute themselves from
// such a copy on every start (the CVE-2019-5736 guard) unless they already run from one, which costs a second
// program load each time: seconds per crun call where guest kernel code is slow (PVM hosts).
int sealed_executable(const std::string& path, std::string& error);

// pipe2 with O_CLOEXEC on both ends and O_NONBLOCK on the agent's end (`nonblocking_end` 0 = read, 1 = write).
bool make_pipe(int fds[2], int nonblocking_end, std::string& error);
void set_nonblocking(int fd);
