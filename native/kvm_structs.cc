#include "kvm_structs.h"

#include "js_values.h"

#include <string>

namespace hako {

namespace {

constexpr uint64_t kU16 = 0xffff;
constexpr uint64_t kU32 = 0xffffffff;

// One table drives both directions so that get and set can never disagree.
#define HAKO_REGS(X)                                                                                   \
  X(rax) X(rbx) X(rcx) X(rdx) X(rsi) X(rdi) X(rsp) X(rbp) X(r8) X(r9) X(r10) X(r11) X(r12) X(r13) \
  X(r14) X(r15) X(rip) X(rflags)

#define HAKO_SEGMENTS(X) X(cs) X(ds) X(es) X(fs) X(gs) X(ss) X(tr) X(ldt)

#define HAKO_CONTROL_REGS(X) X(cr0) X(cr2) X(cr3) X(cr4) X(cr8) X(efer) X(apic_base)

Napi::Object segmentToJs(Napi::Env env, const kvm_segment& s) {
  Napi::Object o = Napi::Object::New(env);
  o.Set("base", Napi::BigInt::New(env, static_cast<uint64_t>(s.base)));
  o.Set("limit", s.limit);
  o.Set("selector", s.selector);
  o.Set("type", s.type);
  o.Set("present", s.present);
  o.Set("dpl", s.dpl);
  o.Set("db", s.db);
  o.Set("s", s.s);
  o.Set("l", s.l);
  o.Set("g", s.g);
  o.Set("avl", s.avl);
  return o;
}

kvm_segment segmentFromJs(Napi::Value value, const std::string& what) {
  Napi::Object o = toObject(value, what);
  kvm_segment s{};
  s.base = fieldBigUint64(o, "base", what);
  s.limit = static_cast<uint32_t>(fieldUint(o, "limit", what, kU32));
  s.selector = static_cast<uint16_t>(fieldUint(o, "selector", what, kU16));
  s.type = static_cast<uint8_t>(fieldUint(o, "type", what, 15));
  s.present = static_cast<uint8_t>(fieldUint(o, "present", what, 1));
  s.dpl = static_cast<uint8_t>(fieldUint(o, "dpl", what, 3));
  s.db = static_cast<uint8_t>(fieldUint(o, "db", what, 1));
  s.s = static_cast<uint8_t>(fieldUint(o, "s", what, 1));
  s.l = static_cast<uint8_t>(fieldUint(o, "l", what, 1));
  s.g = static_cast<uint8_t>(fieldUint(o, "g", what, 1));
  s.avl = static_cast<uint8_t>(fieldUint(o, "avl", what, 1));
  // KVM treats a segment that is not present as unusable (VMX needs the flag).
  s.unusable = s.present ? 0 : 1;
  return s;
}

Napi::Object dtableToJs(Napi::Env env, const kvm_dtable& t) {
  Napi::Object o = Napi::Object::New(env);
  o.Set("base", Napi::BigInt::New(env, static_cast<uint64_t>(t.base)));
  o.Set("limit", t.limit);
  return o;
}

kvm_dtable dtableFromJs(Napi::Value value, const std::string& what) {
  Napi::Object o = toObject(value, what);
  kvm_dtable t{};
  t.base = fieldBigUint64(o, "base", what);
  t.limit = static_cast<uint16_t>(fieldUint(o, "limit", what, kU16));
  return t;
}

}  // namespace

Napi::Object regsToJs(Napi::Env env, const kvm_regs& regs) {
  Napi::Object o = Napi::Object::New(env);
#define X(r) o.Set(#r, Napi::BigInt::New(env, static_cast<uint64_t>(regs.r)));
  HAKO_REGS(X)
#undef X
  return o;
}

kvm_regs regsFromJs(Napi::Value value) {
  Napi::Object o = toObject(value, "regs");
  kvm_regs regs{};
#define X(r) regs.r = fieldBigUint64(o, #r, "regs");
  HAKO_REGS(X)
#undef X
  return regs;
}

Napi::Object sregsToJs(Napi::Env env, const kvm_sregs& sregs) {
  Napi::Object o = Napi::Object::New(env);
#define X(s) o.Set(#s, segmentToJs(env, sregs.s));
  HAKO_SEGMENTS(X)
#undef X
  o.Set("gdt", dtableToJs(env, sregs.gdt));
  o.Set("idt", dtableToJs(env, sregs.idt));
#define X(r) o.Set(#r, Napi::BigInt::New(env, static_cast<uint64_t>(sregs.r)));
  HAKO_CONTROL_REGS(X)
#undef X
  return o;
}

kvm_sregs sregsFromJs(Napi::Value value) {
  Napi::Object o = toObject(value, "sregs");
  kvm_sregs sregs{};
#define X(s) sregs.s = segmentFromJs(o.Get(#s), "sregs." #s);
  HAKO_SEGMENTS(X)
#undef X
  sregs.gdt = dtableFromJs(o.Get("gdt"), "sregs.gdt");
  sregs.idt = dtableFromJs(o.Get("idt"), "sregs.idt");
#define X(r) sregs.r = fieldBigUint64(o, #r, "sregs");
  HAKO_CONTROL_REGS(X)
#undef X
  return sregs;
}

namespace {

// Converts a JS array element by element; `name` names the array and, with an
// index, each element in error messages.
template <typename T, typename Convert>
std::vector<T> arrayFromJs(Napi::Value value, const std::string& name, Convert convert) {
  if (!value.IsArray()) throw Napi::TypeError::New(value.Env(), name + " must be an array");
  Napi::Array array = value.As<Napi::Array>();
  std::vector<T> out(array.Length());
  for (uint32_t i = 0; i < out.size(); i++) out[i] = convert(array.Get(i), name + "[" + std::to_string(i) + "]");
  return out;
}

#define HAKO_CPUID_FIELDS(X) X(function) X(index) X(flags) X(eax) X(ebx) X(ecx) X(edx)

}  // namespace

Napi::Array cpuidToJs(Napi::Env env, const kvm_cpuid_entry2* entries, uint32_t count) {
  Napi::Array array = Napi::Array::New(env, count);
  for (uint32_t i = 0; i < count; i++) {
    Napi::Object o = Napi::Object::New(env);
#define X(f) o.Set(#f, entries[i].f);
    HAKO_CPUID_FIELDS(X)
#undef X
    array.Set(i, o);
  }
  return array;
}

std::vector<kvm_cpuid_entry2> cpuidFromJs(Napi::Value value) {
  return arrayFromJs<kvm_cpuid_entry2>(value, "cpuid", [](Napi::Value v, const std::string& what) {
    Napi::Object o = toObject(v, what);
    kvm_cpuid_entry2 e{};
#define X(f) e.f = static_cast<uint32_t>(fieldUint(o, #f, what, kU32));
    HAKO_CPUID_FIELDS(X)
#undef X
    return e;
  });
}

Napi::Array msrsToJs(Napi::Env env, const std::vector<MsrEntry>& msrs) {
  Napi::Array array = Napi::Array::New(env, msrs.size());
  for (uint32_t i = 0; i < msrs.size(); i++) {
    Napi::Object o = Napi::Object::New(env);
    o.Set("index", msrs[i].index);
    o.Set("data", Napi::BigInt::New(env, msrs[i].data));
    array.Set(i, o);
  }
  return array;
}

std::vector<MsrEntry> msrsFromJs(Napi::Value value) {
  return arrayFromJs<MsrEntry>(value, "msrs", [](Napi::Value v, const std::string& what) {
    Napi::Object o = toObject(v, what);
    return MsrEntry{static_cast<uint32_t>(fieldUint(o, "index", what, kU32)), fieldBigUint64(o, "data", what)};
  });
}

std::vector<uint32_t> msrIndicesFromJs(Napi::Value value) {
  return arrayFromJs<uint32_t>(value, "msr indices", [](Napi::Value v, const std::string& what) {
    return static_cast<uint32_t>(toUint(v, what, kU32));
  });
}

}  // namespace hako
