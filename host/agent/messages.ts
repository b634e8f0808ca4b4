// TypeScript shapes of guest/agent/agent.proto's messages, as protobufjs reads
// and writes them: fields in camelCase, bytes as Buffer/Uint8Array, 64-bit
// integers as numbers. Keep in step with agent.proto (a unit test checks the rpcs).

export interface VersionRequest {}
export interface VersionResponse {
  agentVersion: string;
  /** uname -r in the guest. */
  kernelRelease: string;
  /** Bumped on incompatible changes to agent.proto; currently 1. */
  protocol: number;
}

/** A disk image (ext4, erofs: `device`) or a directory of the sandbox's virtio-fs share (virtiofs: `path`). */
export interface Rootfs {
  /** e.g. "/dev/vdb"; ext4 and erofs only. */
  device?: string;
  /** "ext4", "erofs" or "virtiofs". */
  fstype: string;
  /** virtiofs: the directory relative to the share. */
  path?: string;
  /** virtiofs: a tmpfs overlay on top, so writes stay in the guest. */
  overlay?: boolean;
}

export interface StdioOptions {
  /** One pty for stdin/stdout (stderr merged: readStderr answers EOF at once), resizable with resizeTty. */
  tty?: boolean;
  /** Keep stdin open (otherwise it is /dev/null). */
  stdin?: boolean;
}

/** A process: exec id "" (the default) is the container's init process. */
export interface ProcessId {
  containerId: string;
  execId?: string;
}

export interface CreateContainerRequest {
  /** [A-Za-z0-9][A-Za-z0-9_.-]{0,63} */
  containerId: string;
  /** OCI runtime config.json; the agent sets root.path, linux.cgroupsPath and process.terminal. */
  ociSpec: Uint8Array;
  rootfs: Rootfs;
  stdio?: StdioOptions;
}
/** The init process, created but not started. */
export interface CreateContainerResponse { pid: number }

export interface StartContainerRequest { containerId: string }
export interface StartContainerResponse {}

export interface ExecProcessRequest {
  containerId: string;
  /** Same character set as containerId, not empty, unique within the container. */
  execId: string;
  /** OCI "process" object as JSON (args, env, cwd, user); terminal is set from stdio.tty. */
  process: Uint8Array;
  stdio?: StdioOptions;
}
/** Already running. */
export interface ExecProcessResponse { pid: number }

export interface SignalProcessRequest extends ProcessId {
  signal: number;
  /** Every process of the container (init only). */
  all?: boolean;
}
export interface SignalProcessResponse {}

export type WaitProcessRequest = ProcessId;
export interface WaitProcessResponse {
  /** 128 + signal when killed by a signal. */
  exitCode: number;
  /** 0 unless killed by a signal. */
  signal: number;
  /** The container's cgroup recorded an oom_kill. */
  oomKilled: boolean;
}

export interface WriteStdinRequest extends ProcessId {
  /** At most 1 MiB. */
  data: Uint8Array;
}
/** Always all of data, unless the process closed its stdin (an error). */
export interface WriteStdinResponse { written: number }

export interface ReadStreamRequest extends ProcessId {
  /** 1..1 MiB. */
  maxBytes: number;
}
export interface ReadStreamResponse {
  /** Empty means end of stream. */
  data: Buffer;
}

export type CloseStdinRequest = ProcessId;
export interface CloseStdinResponse {}

export interface ResizeTtyRequest extends ProcessId {
  rows: number;
  cols: number;
}
export interface ResizeTtyResponse {}

export interface StatsContainerRequest { containerId: string }
/** cgroup v2 counters (64-bit in the proto; exact below 2^53). */
export interface StatsContainerResponse {
  cpuUsageUsec: number;
  cpuUserUsec: number;
  cpuSystemUsec: number;
  memoryCurrent: number;
  /** 0 when "max". */
  memoryMax: number;
  pidsCurrent: number;
  oomKills: number;
}

export interface ListProcessesRequest { containerId: string }
/** cgroup.procs, in the guest's pid namespace. */
export interface ListProcessesResponse { pids: number[] }

/** Kills what is left, unmounts, deletes the cgroup. */
export interface RemoveContainerRequest { containerId: string }
export interface RemoveContainerResponse {}

/** Freezes every process of a created or running container (its cgroup v2 freezer). */
export interface PauseContainerRequest { containerId: string }
export interface PauseContainerResponse {}

export interface ResumeContainerRequest { containerId: string }
export interface ResumeContainerResponse {}

export interface UpdateContainerRequest {
  containerId: string;
  /** OCI linux.resources as JSON: memory (limit, reservation, swap), cpu (shares, quota, period), pids (limit). */
  resources: Uint8Array;
}
export interface UpdateContainerResponse {}

export interface GetOOMEventRequest {}
export interface GetOOMEventResponse { containerId: string }
