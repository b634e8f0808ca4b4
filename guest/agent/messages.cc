#include "messages.h"

#include "schema.h"

namespace {

// Calls fn(field) for every field of `in`; unknown fields are skipped (proto3), malformed input is an error.
template <class Fn>
bool each_field(std::string_view in, const char* message, DecodeError& err, Fn fn) {
  Reader r(in);
  Field f;
  while (r.next(f))
    if (!fn(f)) return false;
  if (r.error()) {
    err.message = std::string(message) + ": " + r.error();
    return false;
  }
  return true;
}

bool decode_embedded(const FieldSpec& spec, const Field& f, DecodeError& err, auto& out) {
  if (f.wire != wire::kLen) return err.fail(spec, "expected an embedded message");
  return decode(f.bytes, out, err);  // a repeated occurrence merges into the earlier one, as protobuf does
}

}  // namespace

bool decode(std::string_view in, Rootfs& m, DecodeError& err) {
  namespace S = schema::Rootfs;
  return each_field(in, "Rootfs", err, [&](const Field& f) {
    if (f.number == S::device.number) return get<S::device>(f, m.device, err);
    if (f.number == S::fstype.number) return get<S::fstype>(f, m.fstype, err);
    if (f.number == S::path.number) return get<S::path>(f, m.path, err);
    if (f.number == S::overlay.number) return get<S::overlay>(f, m.overlay, err);
    return true;
  });
}

bool decode(std::string_view in, StdioOptions& m, DecodeError& err) {
  namespace S = schema::StdioOptions;
  return each_field(in, "StdioOptions", err, [&](const Field& f) {
    if (f.number == S::tty.number) return get<S::tty>(f, m.tty, err);
    if (f.number == S::stdin_.number) return get<S::stdin_>(f, m.open_stdin, err);
    return true;
  });
}

bool decode(std::string_view in, VersionRequest&, DecodeError& err) {
  return each_field(in, "VersionRequest", err, [](const Field&) { return true; });
}

bool decode(std::string_view in, CreateContainerRequest& m, DecodeError& err) {
  namespace S = schema::CreateContainerRequest;
  return each_field(in, "CreateContainerRequest", err, [&](const Field& f) {
    if (f.number == S::container_id.number) return get<S::container_id>(f, m.container_id, err);
    if (f.number == S::oci_spec.number) return get<S::oci_spec>(f, m.oci_spec, err);
    if (f.number == S::rootfs.number) return m.has_rootfs = true, decode_embedded(S::rootfs, f, err, m.rootfs);
    if (f.number == S::stdio.number) return decode_embedded(S::stdio, f, err, m.stdio);
    return true;
  });
}

bool decode(std::string_view in, StartContainerRequest& m, DecodeError& err) {
  namespace S = schema::StartContainerRequest;
  return each_field(in, "StartContainerRequest", err, [&](const Field& f) {
    if (f.number == S::container_id.number) return get<S::container_id>(f, m.container_id, err);
    return true;
  });
}

bool decode(std::string_view in, ExecProcessRequest& m, DecodeError& err) {
  namespace S = schema::ExecProcessRequest;
  return each_field(in, "ExecProcessRequest", err, [&](const Field& f) {
    if (f.number == S::container_id.number) return get<S::container_id>(f, m.container_id, err);
    if (f.number == S::exec_id.number) return get<S::exec_id>(f, m.exec_id, err);
    if (f.number == S::process.number) return get<S::process>(f, m.process, err);
    if (f.number == S::stdio.number) return decode_embedded(S::stdio, f, err, m.stdio);
    return true;
  });
}

bool decode(std::string_view in, SignalProcessRequest& m, DecodeError& err) {
  namespace S = schema::SignalProcessRequest;
  return each_field(in, "SignalProcessRequest", err, [&](const Field& f) {
    if (f.number == S::container_id.number) return get<S::container_id>(f, m.container_id, err);
    if (f.number == S::exec_id.number) return get<S::exec_id>(f, m.exec_id, err);
    if (f.number == S::signal.number) return get<S::signal>(f, m.signal, err);
    if (f.number == S::all.number) return get<S::all>(f, m.all, err);
    return true;
  });
}

bool decode(std::string_view in, WaitProcessRequest& m, DecodeError& err) {
  namespace S = schema::WaitProcessRequest;
  return each_field(in, "WaitProcessRequest", err, [&](const Field& f) {
    if (f.number == S::container_id.number) return get<S::container_id>(f, m.container_id, err);
    if (f.number == S::exec_id.number) return get<S::exec_id>(f, m.exec_id, err);
    return true;
  });
}

bool decode(std::string_view in, WriteStdinRequest& m, DecodeError& err) {
  namespace S = schema::WriteStdinRequest;
  return each_field(in, "WriteStdinRequest", err, [&](const Field& f) {
    if (f.number == S::container_id.number) return get<S::container_id>(f, m.container_id, err);
    if (f.number == S::exec_id.number) return get<S::exec_id>(f, m.exec_id, err);
    if (f.number == S::data.number) return get<S::data>(f, m.data, err);
    return true;
  });
}

bool decode(std::string_view in, ReadStreamRequest& m, DecodeError& err) {
  namespace S = schema::ReadStreamRequest;
  return each_field(in, "ReadStreamRequest", err, [&](const Field& f) {
    if (f.number == S::container_id.number) return get<S::container_id>(f, m.container_id, err);
    if (f.number == S::exec_id.number) return get<S::exec_id>(f, m.exec_id, err);
    if (f.number == S::max_bytes.number) return get<S::max_bytes>(f, m.max_bytes, err);
    return true;
  });
}

bool decode(std::string_view in, CloseStdinRequest& m, DecodeError& err) {
  namespace S = schema::CloseStdinRequest;
  return each_field(in, "CloseStdinRequest", err, [&](const Field& f) {
    if (f.number == S::container_id.number) return get<S::container_id>(f, m.container_id, err);
    if (f.number == S::exec_id.number) return get<S::exec_id>(f, m.exec_id, err);
    return true;
  });
}

bool decode(std::string_view in, ResizeTtyRequest& m, DecodeError& err) {
  namespace S = schema::ResizeTtyRequest;
  return each_field(in, "ResizeTtyRequest", err, [&](const Field& f) {
    if (f.number == S::container_id.number) return get<S::container_id>(f, m.container_id, err);
    if (f.number == S::exec_id.number) return get<S::exec_id>(f, m.exec_id, err);
    if (f.number == S::rows.number) return get<S::rows>(f, m.rows, err);
    if (f.number == S::cols.number) return get<S::cols>(f, m.cols, err);
    return true;
  });
}

bool decode(std::string_view in, StatsContainerRequest& m, DecodeError& err) {
  namespace S = schema::StatsContainerRequest;
  return each_field(in, "StatsContainerRequest", err, [&](const Field& f) {
    if (f.number == S::container_id.number) return get<S::container_id>(f, m.container_id, err);
    return true;
  });
}

bool decode(std::string_view in, ListProcessesRequest& m, DecodeError& err) {
  namespace S = schema::ListProcessesRequest;
  return each_field(in, "ListProcessesRequest", err, [&](const Field& f) {
    if (f.number == S::container_id.number) return get<S::container_id>(f, m.container_id, err);
    return true;
  });
}

bool decode(std::string_view in, RemoveContainerRequest& m, DecodeError& err) {
  namespace S = schema::RemoveContainerRequest;
  return each_field(in, "RemoveContainerRequest", err, [&](const Field& f) {
    if (f.number == S::container_id.number) return get<S::container_id>(f, m.container_id, err);
    return true;
  });
}

bool decode(std::string_view in, GetOOMEventRequest&, DecodeError& err) {
  return each_field(in, "GetOOMEventRequest", err, [](const Field&) { return true; });
}

bool decode(std::string_view in, PauseContainerRequest& m, DecodeError& err) {
  namespace S = schema::PauseContainerRequest;
  return each_field(in, "PauseContainerRequest", err, [&](const Field& f) {
    if (f.number == S::container_id.number) return get<S::container_id>(f, m.container_id, err);
    return true;
  });
}

bool decode(std::string_view in, ResumeContainerRequest& m, DecodeError& err) {
  namespace S = schema::ResumeContainerRequest;
  return each_field(in, "ResumeContainerRequest", err, [&](const Field& f) {
    if (f.number == S::container_id.number) return get<S::container_id>(f, m.container_id, err);
    return true;
  });
}

bool decode(std::string_view in, UpdateContainerRequest& m, DecodeError& err) {
  namespace S = schema::UpdateContainerRequest;
  return each_field(in, "UpdateContainerRequest", err, [&](const Field& f) {
    if (f.number == S::container_id.number) return get<S::container_id>(f, m.container_id, err);
    if (f.number == S::resources.number) return get<S::resources>(f, m.resources, err);
    return true;
  });
}

std::string encode(const VersionResponse& m) {
  namespace S = schema::VersionResponse;
  Writer w;
  put<S::agent_version>(w, m.agent_version);
  put<S::kernel_release>(w, m.kernel_release);
  put<S::protocol>(w, m.protocol);
  return w.out;
}

std::string encode(const CreateContainerResponse& m) {
  Writer w;
  put<schema::CreateContainerResponse::pid>(w, m.pid);
  return w.out;
}

std::string encode(const StartContainerResponse&) { return {}; }

std::string encode(const ExecProcessResponse& m) {
  Writer w;
  put<schema::ExecProcessResponse::pid>(w, m.pid);
  return w.out;
}

std::string encode(const SignalProcessResponse&) { return {}; }

std::string encode(const WaitProcessResponse& m) {
  namespace S = schema::WaitProcessResponse;
  Writer w;
  put<S::exit_code>(w, m.exit_code);
  put<S::signal>(w, m.signal);
  put<S::oom_killed>(w, m.oom_killed);
  return w.out;
}

std::string encode(const WriteStdinResponse& m) {
  Writer w;
  put<schema::WriteStdinResponse::written>(w, m.written);
  return w.out;
}

std::string encode(const ReadStreamResponse& m) {
  Writer w;
  put<schema::ReadStreamResponse::data>(w, m.data);
  return w.out;
}

std::string encode(const CloseStdinResponse&) { return {}; }
std::string encode(const ResizeTtyResponse&) { return {}; }

std::string encode(const StatsContainerResponse& m) {
  namespace S = schema::StatsContainerResponse;
  Writer w;
  put<S::cpu_usage_usec>(w, m.cpu_usage_usec);
  put<S::cpu_user_usec>(w, m.cpu_user_usec);
  put<S::cpu_system_usec>(w, m.cpu_system_usec);
  put<S::memory_current>(w, m.memory_current);
  put<S::memory_max>(w, m.memory_max);
  put<S::pids_current>(w, m.pids_current);
  put<S::oom_kills>(w, m.oom_kills);
  return w.out;
}

std::string encode(const ListProcessesResponse& m) {
  Writer w;
  put<schema::ListProcessesResponse::pids>(w, m.pids);
  return w.out;
}

std::string encode(const RemoveContainerResponse&) { return {}; }

std::string encode(const GetOOMEventResponse& m) {
  Writer w;
  put<schema::GetOOMEventResponse::container_id>(w, m.container_id);
  return w.out;
}

std::string encode(const PauseContainerResponse&) { return {}; }
std::string encode(const ResumeContainerResponse&) { return {}; }
std::string encode(const UpdateContainerResponse&) { return {}; }
