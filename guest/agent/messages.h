// The messages of agent.proto as C++ structs: requests are decoded, responses encoded (messages.cc). Field numbers
// come from the generated schema.h, so this file only has to agree with agent.proto on names and types, and the
// compiler checks both.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "proto.h"

struct VersionRequest {};
struct VersionResponse {
  std::string agent_version, kernel_release;
  uint32_t protocol = 0;
};

struct Rootfs {
  std::string device, fstype, path;
  bool overlay = false;
};
struct StdioOptions {
  bool tty = false;
  bool open_stdin = false;  // proto field `stdin`
};

struct CreateContainerRequest {
  std::string container_id, oci_spec;
  bool has_rootfs = false;
  Rootfs rootfs;
  StdioOptions stdio;
};
struct CreateContainerResponse {
  uint32_t pid = 0;
};

struct StartContainerRequest {
  std::string container_id;
};
struct StartContainerResponse {};

struct ExecProcessRequest {
  std::string container_id, exec_id, process;
  StdioOptions stdio;
};
struct ExecProcessResponse {
  uint32_t pid = 0;
};

struct SignalProcessRequest {
  std::string container_id, exec_id;
  uint32_t signal = 0;
  bool all = false;
};
struct SignalProcessResponse {};

struct WaitProcessRequest {
  std::string container_id, exec_id;
};
struct WaitProcessResponse {
  int32_t exit_code = 0;
  uint32_t signal = 0;
  bool oom_killed = false;
};

struct WriteStdinRequest {
  std::string container_id, exec_id, data;
};
struct WriteStdinResponse {
  uint32_t written = 0;
};

struct ReadStreamRequest {
  std::string container_id, exec_id;
  uint32_t max_bytes = 0;
};
struct ReadStreamResponse {
  std::string data;
};

struct CloseStdinRequest {
  std::string container_id, exec_id;
};
struct CloseStdinResponse {};

struct ResizeTtyRequest {
  std::string container_id, exec_id;
  uint32_t rows = 0, cols = 0;
};
struct ResizeTtyResponse {};

struct StatsContainerRequest {
  std::string container_id;
};
struct StatsContainerResponse {
  uint64_t cpu_usage_usec = 0, cpu_user_usec = 0, cpu_system_usec = 0;
  uint64_t memory_current = 0, memory_max = 0, pids_current = 0, oom_kills = 0;
};

struct ListProcessesRequest {
  std::string container_id;
};
struct ListProcessesResponse {
  std::vector<uint32_t> pids;
};

struct RemoveContainerRequest {
  std::string container_id;
};
struct RemoveContainerResponse {};

struct PauseContainerRequest {
  std::string container_id;
};
struct PauseContainerResponse {};

struct ResumeContainerRequest {
  std::string container_id;
};
struct ResumeContainerResponse {};

struct UpdateContainerRequest {
  std::string container_id, resources;
};
struct UpdateContainerResponse {};

struct GetOOMEventRequest {};
struct GetOOMEventResponse {
  std::string container_id;
};

// ReadStdout and ReadStderr share their message types: declare each codec once.
bool decode(std::string_view in, VersionRequest& m, DecodeError& err);
bool decode(std::string_view in, CreateContainerRequest& m, DecodeError& err);
bool decode(std::string_view in, StartContainerRequest& m, DecodeError& err);
bool decode(std::string_view in, ExecProcessRequest& m, DecodeError& err);
bool decode(std::string_view in, SignalProcessRequest& m, DecodeError& err);
bool decode(std::string_view in, WaitProcessRequest& m, DecodeError& err);
bool decode(std::string_view in, WriteStdinRequest& m, DecodeError& err);
bool decode(std::string_view in, ReadStreamRequest& m, DecodeError& err);
bool decode(std::string_view in, CloseStdinRequest& m, DecodeError& err);
bool decode(std::string_view in, ResizeTtyRequest& m, DecodeError& err);
bool decode(std::string_view in, StatsContainerRequest& m, DecodeError& err);
bool decode(std::string_view in, ListProcessesRequest& m, DecodeError& err);
bool decode(std::string_view in, RemoveContainerRequest& m, DecodeError& err);
bool decode(std::string_view in, GetOOMEventRequest& m, DecodeError& err);
bool decode(std::string_view in, PauseContainerRequest& m, DecodeError& err);
bool decode(std::string_view in, ResumeContainerRequest& m, DecodeError& err);
bool decode(std::string_view in, UpdateContainerRequest& m, DecodeError& err);

std::string encode(const VersionResponse& m);
std::string encode(const CreateContainerResponse& m);
std::string encode(const StartContainerResponse& m);
std::string encode(const ExecProcessResponse& m);
std::string encode(const SignalProcessResponse& m);
std::string encode(const WaitProcessResponse& m);
std::string encode(const WriteStdinResponse& m);
std::string encode(const ReadStreamResponse& m);
std::string encode(const CloseStdinResponse& m);
std::string encode(const ResizeTtyResponse& m);
std::string encode(const StatsContainerResponse& m);
std::string encode(const ListProcessesResponse& m);
std::string encode(const RemoveContainerResponse& m);
std::string encode(const GetOOMEventResponse& m);
std::string encode(const PauseContainerResponse& m);
std::string encode(const ResumeContainerResponse& m);
std::string encode(const UpdateContainerResponse& m);
