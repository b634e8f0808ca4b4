// hako-agent: the guest side of hako's host<->guest API (agent.proto), a ttRPC server that runs containers with crun.
//   hako-agent [--listen vsock:PORT | --listen unix:PATH] [--crun PATH] [--run-dir DIR] [--ready-fd N]
// Default: --listen vsock:1024. Logs go to stderr. With --ready-fd, the agent writes "ready\n" to fd N and closes it
// once it listens (guest init waits for that line, so a VM template is snapshotted with the agent listening).
#include <signal.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#include "agent.h"

int main(int argc, char** argv) {
  std::string address = "vsock:1024";
  Agent::Options options;
  int ready_fd = -1;
  for (int i = 1; i < argc; i++) {
    std::string arg = argv[i];
    if (i + 1 < argc && arg == "--listen") {
      address = argv[++i];
    } else if (i + 1 < argc && arg == "--crun") {
      options.crun = argv[++i];
    } else if (i + 1 < argc && arg == "--run-dir") {
      options.run_dir = argv[++i];
    } else if (i + 1 < argc && arg == "--ready-fd") {
      char* end;
      long fd = strtol(argv[++i], &end, 10);
      if (*end || end == argv[i] || fd < 0 || fd > 1023) {
        fprintf(stderr, "hako-agent: --ready-fd '%s' is not a file descriptor number\n", argv[i]);
        return 2;
      }
      ready_fd = int(fd);
    } else {
      fprintf(stderr, "usage: hako-agent [--listen vsock:PORT|unix:PATH] [--crun PATH] [--run-dir DIR] [--ready-fd N]\n");
      return 2;
    }
  }
  signal(SIGPIPE, SIG_IGN);  // a closed stdin pipe or host socket is an error return, not a crash
  EventLoop loop;
  Agent agent(loop, options);
  std::string error;
  if (!agent.start(address, error)) {
    fprintf(stderr, "hako-agent: %s\n", error.c_str());
    return 1;
  }
  fprintf(stderr, "hako-agent: listening on %s\n", address.c_str());
  if (ready_fd >= 0) {
    if (write(ready_fd, "ready\n", 6) != 6) fprintf(stderr, "hako-agent: writing to --ready-fd %d failed\n", ready_fd);
    close(ready_fd);
  }
  loop.run();
}
