#include "vcpu.h"

#include "kvm_error.h"

#include <pthread.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/mman.h>

#include <cerrno>
#include <cstdio>
#include <mutex>
#include <system_error>

namespace hako {

namespace {

// Realtime signals are unused by Node and libuv; glibc's own are below SIGRTMIN.
int kickSignal() { return SIGRTMIN; }

// Interrupting KVM_RUN (or a futex wait) is all the signal is for.
void onKick(int) {}

const char* exitReasonName(uint32_t reason) {
  switch (reason) {
#define X(name) \
  case name: return #name;
    X(KVM_EXIT_UNKNOWN) X(KVM_EXIT_EXCEPTION) X(KVM_EXIT_IO) X(KVM_EXIT_HYPERCALL) X(KVM_EXIT_DEBUG)
    X(KVM_EXIT_HLT) X(KVM_EXIT_MMIO) X(KVM_EXIT_IRQ_WINDOW_OPEN) X(KVM_EXIT_SHUTDOWN) X(KVM_EXIT_FAIL_ENTRY)
    X(KVM_EXIT_INTR) X(KVM_EXIT_SET_TPR) X(KVM_EXIT_TPR_ACCESS) X(KVM_EXIT_NMI) X(KVM_EXIT_INTERNAL_ERROR)
    X(KVM_EXIT_WATCHDOG) X(KVM_EXIT_EPR) X(KVM_EXIT_SYSTEM_EVENT) X(KVM_EXIT_IOAPIC_EOI) X(KVM_EXIT_HYPERV)
    X(KVM_EXIT_X86_RDMSR) X(KVM_EXIT_X86_WRMSR) X(KVM_EXIT_DIRTY_RING_FULL) X(KVM_EXIT_AP_RESET_HOLD)
    X(KVM_EXIT_X86_BUS_LOCK) X(KVM_EXIT_XEN) X(KVM_EXIT_NOTIFY)
#undef X
    default: return "unknown to this build";
  }
}

const char* internalErrorName(uint32_t suberror) {
  switch (suberror) {
    case KVM_INTERNAL_ERROR_EMULATION: return "emulation failure";
    case KVM_INTERNAL_ERROR_SIMUL_EX: return "exception while delivering an exception";
    case KVM_INTERNAL_ERROR_DELIVERY_EV: return "exit while delivering an event";
    case KVM_INTERNAL_ERROR_UNEXPECTED_EXIT_REASON: return "unexpected exit reason";
    default: return "unknown";
  }
}

// "suberror 1 (emulation failure), instruction cc 00 ..., data 0x1 ...": the
// instruction bytes, when KVM provides them, say what the emulator refused.
std::string describeInternalError(const kvm_run& run) {
  const auto& internal = run.internal;
  std::string detail =
      "suberror " + std::to_string(internal.suberror) + " (" + internalErrorName(internal.suberror) + ")";
  uint32_t words = internal.ndata < 16 ? internal.ndata : 16;
  const auto& emulation = run.emulation_failure;
  // data[0] is then the flags, data[1..2] the instruction length and bytes.
  if (internal.suberror == KVM_INTERNAL_ERROR_EMULATION && words >= 3 &&
      (emulation.flags & KVM_INTERNAL_ERROR_EMULATION_FLAG_INSTRUCTION_BYTES)) {
    detail += ", instruction";
    uint32_t size = emulation.insn_size < sizeof emulation.insn_bytes ? emulation.insn_size : sizeof emulation.insn_bytes;
    for (uint32_t i = 0; i < size; i++) {
      char byte[4];
      std::snprintf(byte, sizeof byte, " %02x", emulation.insn_bytes[i]);
      detail += byte;
    }
  }
  if (words > 0) detail += ", data";
  for (uint32_t i = 0; i < words; i++) {
    detail += ' ';
    detail += hex(internal.data[i]);
  }
  return detail;
}

}  // namespace

std::unique_ptr<Vcpu> Vcpu::create(Napi::Env env, int vmFd, uint32_t id, size_t runSize) {
  UniqueFd fd(ioctl(vmFd, KVM_CREATE_VCPU, static_cast<unsigned long>(id)));
  if (!fd.valid()) throwKvmError(env, "ioctl(KVM_CREATE_VCPU)", errno, "vCPU id " + std::to_string(id));
  void* run = mmap(nullptr, runSize, PROT_READ | PROT_WRITE, MAP_SHARED, fd.get(), 0);
  if (run == MAP_FAILED) throwKvmError(env, "mmap(kvm_run)", errno, "vCPU id " + std::to_string(id));
  return std::unique_ptr<Vcpu>(new Vcpu(id, std::move(fd), static_cast<kvm_run*>(run), runSize));
}

void Vcpu::installKickSignal(Napi::Env env) {
  static std::once_flag once;
  static int error = 0;
  std::call_once(once, [] {
    struct sigaction previous {};
    sigaction(kickSignal(), nullptr, &previous);
    if (previous.sa_handler != SIG_DFL && previous.sa_handler != SIG_IGN) {
      error = EBUSY;
      return;
    }
    // No SA_RESTART: the signal must interrupt KVM_RUN and futex waits.
    struct sigaction action {};
    action.sa_handler = onKick;
    sigemptyset(&action.sa_mask);
    if (sigaction(kickSignal(), &action, nullptr) < 0) error = errno;
  });
  if (error != 0) {
    throwKvmError(env, "sigaction(SIGRTMIN)", error,
                  error == EBUSY ? "another part of this process already handles SIGRTMIN, which hako uses to stop vCPUs"
                                 : "");
  }
}

Vcpu::Vcpu(uint32_t id, UniqueFd fd, kvm_run* run, size_t runSize)
    : fd_(std::move(fd)), run_(run), runSize_(runSize), slot_(std::make_shared<ExitSlot>(id)) {}

Vcpu::~Vcpu() {
  requestCancel();
  join();
  close();
}

int Vcpu::stateFd(Napi::Env env, const char* ioctlName) const {
  std::string syscall = std::string("ioctl(") + ioctlName + ")";
  if (!fd_.valid()) throwKvmError(env, syscall, EBADF, "the VM of vCPU " + std::to_string(id()) + " is closed");
  if (threadActive_.load() && !slot_->pending() && !slot_->stopRequested()) {
    throwKvmError(env, syscall, EBUSY,
                  "vCPU " + std::to_string(id()) +
                      " is running: its state is accessible before run(), inside its onExit, or after it stopped");
  }
  return fd_.get();
}

const std::shared_ptr<ExitSlot>& Vcpu::prepareRun() {
  slot_ = std::make_shared<ExitSlot>(id());
  return slot_;
}

void Vcpu::start(Napi::Env env, ExitChannel& channel) {
  // The last run's stop left it set: KVM_RUN would return at once, forever.
  // A stop requested for this run sets it again (kick), or is seen in the slot.
  __atomic_store_n(&run_->immediate_exit, 0, __ATOMIC_SEQ_CST);
  // The thread inherits a mask that blocks every signal, so that signals meant
  // for the process land on Node's threads; it then unblocks only the kick.
  sigset_t all, previous;
  sigfillset(&all);
  pthread_sigmask(SIG_SETMASK, &all, &previous);
  threadActive_.store(true);
  int err = 0;
  try {
    thread_ = std::thread([this, &channel] { threadMain(channel); });
  } catch (const std::system_error& e) {
    threadActive_.store(false);
    err = e.code().value();
  }
  pthread_sigmask(SIG_SETMASK, &previous, nullptr);
  if (err != 0) throwKvmError(env, "pthread_create", err, "vCPU " + std::to_string(id()));
}

void Vcpu::requestStop() {
  slot_->requestStop();
  kick();
}

void Vcpu::requestCancel() {
  slot_->cancel();
  kick();
}

void Vcpu::kick() {
  if (!thread_.joinable()) return;
  // immediate_exit covers the window between the thread's stop check and its
  // entry into KVM_RUN; the signal interrupts a KVM_RUN already in progress.
  __atomic_store_n(&run_->immediate_exit, 1, __ATOMIC_SEQ_CST);
  pthread_kill(thread_.native_handle(), kickSignal());
}

void Vcpu::join() {
  if (thread_.joinable()) thread_.join();
}

void Vcpu::close() {
  if (run_ != nullptr) munmap(run_, runSize_);
  run_ = nullptr;
  fd_.reset();
}

void Vcpu::threadMain(ExitChannel& channel) {
  VcpuThreadScope scope;
  sigset_t kick;
  sigemptyset(&kick);
  sigaddset(&kick, kickSignal());
  pthread_sigmask(SIG_UNBLOCK, &kick, nullptr);
  char name[16];
  std::snprintf(name, sizeof name, "hako-vcpu-%u", id());
  pthread_setname_np(pthread_self(), name);

  StopReason reason = StopReason::Stopped;
  std::string detail;
  // An answered port/MMIO access is complete (RIP past it, a read's value in
  // its register) only once KVM_RUN is entered again. When stopping, that
  // KVM_RUN runs with immediate_exit set: it completes the access and returns
  // EINTR without running guest code.
  bool accessInFlight = false;
  while (!slot_->stopRequested() || accessInFlight) {
    if (slot_->stopRequested()) __atomic_store_n(&run_->immediate_exit, 1, __ATOMIC_SEQ_CST);
    int result = ioctl(fd_.get(), KVM_RUN, 0);
    accessInFlight = false;
    if (result < 0) {
      int err = errno;
      if (err == EINTR || err == EAGAIN) continue;
      reason = StopReason::Error;
      detail = "ioctl(KVM_RUN): " + describeErrno(err) + ripSuffix();
      break;
    }
    // Completing an access may exit again (the next chunk of a string port
    // access or of a split MMIO access): that one is handled the same way.
    if (!handleExit(channel, reason, detail, accessInFlight)) break;
  }
  // The JS thread may touch this vCPU's state from onStop on.
  threadActive_.store(false);
  channel.reportStop(*slot_, reason, std::move(detail));
}

bool Vcpu::handleExit(ExitChannel& channel, StopReason& reason, std::string& detail, bool& accessInFlight) {
  const kvm_run& run = *run_;
  switch (run.exit_reason) {
    case KVM_EXIT_IO: {
      const auto& io = run.io;
      uint64_t end = io.data_offset + uint64_t{io.size} * io.count;
      if ((io.size != 1 && io.size != 2 && io.size != 4) || io.count == 0 || end > runSize_) {
        reason = StopReason::Error;
        detail = "malformed KVM_EXIT_IO from the kernel: size " + std::to_string(io.size) + ", count " +
                 std::to_string(io.count) + ", data offset " + std::to_string(io.data_offset);
        return false;
      }
      GuestAccess access{GuestAccess::Kind::Pio, io.port, io.size, io.count, io.direction == KVM_EXIT_IO_OUT,
                         reinterpret_cast<uint8_t*>(run_) + io.data_offset};
      return emulate(channel, access, reason, detail, accessInFlight);
    }
    case KVM_EXIT_MMIO: {
      auto& mmio = run_->mmio;
      if (mmio.len == 0 || mmio.len > sizeof mmio.data) {
        reason = StopReason::Error;
        detail = "malformed KVM_EXIT_MMIO from the kernel: length " + std::to_string(mmio.len);
        return false;
      }
      GuestAccess access{GuestAccess::Kind::Mmio, mmio.phys_addr, mmio.len, 1, mmio.is_write != 0, mmio.data};
      return emulate(channel, access, reason, detail, accessInFlight);
    }
    case KVM_EXIT_INTR:
      return true;
    case KVM_EXIT_SHUTDOWN:
      reason = StopReason::Shutdown;
      detail = "KVM_EXIT_SHUTDOWN (triple fault)" + ripSuffix();
      return false;
    case KVM_EXIT_SYSTEM_EVENT:
      if (run.system_event.type == KVM_SYSTEM_EVENT_RESET) {
        reason = StopReason::Reset;
        detail = "KVM_SYSTEM_EVENT_RESET";
      } else if (run.system_event.type == KVM_SYSTEM_EVENT_SHUTDOWN) {
        reason = StopReason::Poweroff;
        detail = "KVM_SYSTEM_EVENT_SHUTDOWN";
      } else {
        reason = StopReason::Unhandled;
        detail = "KVM_EXIT_SYSTEM_EVENT of type " + std::to_string(run.system_event.type) + ripSuffix();
      }
      return false;
    case KVM_EXIT_INTERNAL_ERROR:
      reason = StopReason::InternalError;
      detail = describeInternalError(run) + ripSuffix();
      return false;
    case KVM_EXIT_FAIL_ENTRY:
      reason = StopReason::FailEntry;
      detail = "hardware entry failure reason " + hex(run.fail_entry.hardware_entry_failure_reason) + " on host cpu " +
               std::to_string(run.fail_entry.cpu) + ripSuffix();
      return false;
    default:
      reason = StopReason::Unhandled;
      detail = "exit reason " + std::to_string(run.exit_reason) + " (" + exitReasonName(run.exit_reason) + ")" +
               ripSuffix();
      return false;
  }
}

bool Vcpu::emulate(ExitChannel& channel, const GuestAccess& access, StopReason& reason, std::string& detail,
                   bool& accessInFlight) {
  switch (slot_->handOff(channel, access)) {
    case ExitSlot::Outcome::Answered:
      accessInFlight = true;
      return true;
    case ExitSlot::Outcome::Cancelled:
      reason = StopReason::Stopped;
      return false;
    case ExitSlot::Outcome::HandlerFailed:
      reason = StopReason::Error;
      detail = slot_->failure() + ripSuffix();
      return false;
  }
  return false;
}

std::string Vcpu::ripSuffix() const {
  kvm_regs regs{};
  if (ioctl(fd_.get(), KVM_GET_REGS, &regs) < 0) return "";
  return ", rip " + hex(regs.rip);
}

}  // namespace hako
