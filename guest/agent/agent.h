// The hako.agent.v1.Agent service: containers and their processes, run with crun. Single-threaded: every call is
// answered at once or parked (ReadStdout until output, WaitProcess until exit, ...) and answered from the event loop,
// so no call blocks another. crun itself runs synchronously (create/start/exec/kill/delete return quickly).
#pragma once

#include <sys/types.h>

#include <deque>
#include <map>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "event_loop.h"
#include "messages.h"
#include "schema.h"
#include "ttrpc.h"

class Agent {
 public:
  struct Options {
    std::string crun = "/usr/bin/crun";
    std::string run_dir = "/run/hako";          // bundles, mounts and sockets: run_dir/containers/<id>/...
    std::string cgroup_root = "/sys/fs/cgroup";  // containers get cgroup_root/hako/<id>
    std::string share_dir = "/run/hako-shared";  // where the virtio-fs share "hako-shared" is mounted when needed
  };

  Agent(EventLoop& loop, Options options);
  // Mounts cgroup2 if needed, starts reaping children and watching for OOM kills, and listens on `address`.
  bool start(const std::string& address, std::string& error);

 private:
  struct PendingRead {
    Call call;
    uint32_t max_bytes;
  };
  struct PendingWrite {
    Call call;  // conn 0: written by the agent itself (^D for CloseStdin on a tty), nobody to answer
    std::string data;
    size_t done = 0;
  };
  // One stdio stream of a process as the agent sees it: the agent's end of a pipe, or the pty master.
  struct Stream {
    int fd = -1;
    uint64_t token = 0;  // event-loop watch, only while calls are parked on it
    std::deque<PendingRead> reads;
    std::deque<PendingWrite> writes;
    bool close_when_drained = false;  // CloseStdin arrived while writes were still pending
  };
  struct Process {
    std::string container_id, exec_id;
    pid_t pid = 0;
    bool tty = false;
    Stream in, out, err;  // with a tty, `in` and `out` hold the pty master (two fds) and `err` is unused
    bool exited = false;
    WaitProcessResponse result;
    std::vector<Call> waiters;
  };
  struct Container {
    std::string id, dir, cgroup_dir;
    bool started = false;
    bool paused = false;  // its cgroup is frozen (PauseContainer)
    std::vector<std::string> mounts;  // what mount_rootfs mounted (under dir), unmounted in reverse order
    std::unique_ptr<Process> init;
    std::map<std::string, std::unique_ptr<Process>> execs;
    int oom_watch = -1;  // inotify watch of memory.events
    uint64_t oom_kills = 0;
  };
  struct Stdio;  // fds handed to crun while creating a process (agent.cc)

#define HAKO_DECLARE_HANDLER(method, Request, Response) void method(Call call, Request& req);
  HAKO_AGENT_METHODS(HAKO_DECLARE_HANDLER)
#undef HAKO_DECLARE_HANDLER

  void dispatch(Call call, std::string_view service, std::string_view method, std::string_view payload);
  template <class Response>
  void reply(Call call, const Response& response) {
    server_.reply(call, encode(response));
  }
  void fail(Call call, int code, const std::string& message) { server_.fail(call, code, message); }

  // Lookups that answer the call with an error (and return nullptr) when the ids are invalid or unknown.
  Container* find_container(Call call, const std::string& id);
  Process* find_process(Call call, const std::string& container_id, const std::string& exec_id);
  static std::vector<Process*> processes(Container& c);  // init first, then the execs

  bool setup_cgroups(std::string& error);
  // Writes cgroup.freeze and waits (bounded) until cgroup.events reports the new state.
  bool freeze(Container& c, bool frozen, std::string& error);
  bool mount_rootfs(Container& c, const Rootfs& rootfs, std::string& error);
  // Mounts the share at options_.share_dir unless already done (first use, never at start-up: a template must not
  // hold it mounted, each clone gets a fresh share).
  bool mount_share(std::string& error);
  // Bind-mounts the share's directory `path` (resolved beneath the share, no symlinks followed) on `target`.
  bool bind_shared(Container& c, const std::string& path, const std::string& target, std::string& error);
  void unmount_rootfs(Container& c);
  bool crun(const std::vector<std::string>& args, int in, int out, int err, std::string& error);
  bool crun(const std::vector<std::string>& args, std::string& error);
  // Sets up stdio, runs crun (create or exec; it writes the new pid to pid_file) and fills in p's pid and streams.
  bool spawn(Process& p, const StdioOptions& stdio, std::vector<std::string> args, const std::string& pid_file,
             std::string& error);

  void serve(Stream& s);
  void serve_reads(Stream& s);
  void serve_writes(Stream& s);
  void update_watch(Stream& s);
  void close_stream(Stream& s, const std::string& why);
  void close_process(Process& p, const std::string& why);

  // Parked calls with a deadline (ttrpc timeout_nano) are answered DEADLINE_EXCEEDED when it passes.
  void park_deadline(Call call);
  void expire_calls();

  void reap();
  void exited(Process& p, int status);
  void check_oom(Container& c);
  void read_oom_events();
  void deliver_oom_events();

  EventLoop& loop_;
  Options options_;
  TtrpcServer server_;
  std::map<std::string, std::unique_ptr<Container>> containers_;
  std::unordered_map<pid_t, Process*> by_pid_;  // processes not yet reaped
  int inotify_fd_ = -1;
  int crun_fd_ = -1;  // a sealed copy of crun (system.h sealed_executable), or -1: run options_.crun
  std::deque<std::string> oom_events_;  // containers with an OOM kill nobody has asked about yet
  std::deque<Call> oom_waiters_;
  std::vector<char> io_buffer_;
  uint64_t console_count_ = 0;
  int64_t next_deadline_ = 0;  // the armed timer, 0: none
  bool share_mounted_ = false;
};
