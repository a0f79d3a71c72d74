// Live-migration dirty log (vhost-user SET_LOG_BASE with LOG_SHMFD): one bit per 4 KiB guest
// physical page in a mapping shared with the front end. QEMU harvests it concurrently with an
// atomic exchange per word, so every bit we set must be an atomic RMW: a plain read-modify-write
// could store back a byte QEMU has just cleared and lose our bit (or resurrect its own).
#include "common.h"
#include <cmath>
#include <cstdint>

namespace vhu {
namespace {

constexpr uint64_t kLogPageShift = 12;  // VHOST_LOG_PAGE = 4096

// dirtyLogMark(log: ArrayBuffer, gpa: number, len: number) -> pages that fall past the log (0
// normally). Sets the bit of every page in [gpa, gpa + len); pages beyond the log are skipped, never
// written. One call per buffer, not per page: a 128 KiB read is 32 bits in one call.
Napi::Value DirtyLogMark(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 3 || !info[0].IsArrayBuffer() || !info[1].IsNumber() || !info[2].IsNumber())
    return ThrowType(env, "dirtyLogMark(log: ArrayBuffer, gpa: number, len: number)");
  double gpaD = info[1].As<Napi::Number>().DoubleValue(), lenD = info[2].As<Napi::Number>().DoubleValue();
  // 2^53: the callers' addresses are safe integers; anything else is a caller bug, not guest input.
  if (!(gpaD >= 0) || !(lenD >= 0) || gpaD > 9007199254740991.0 || lenD > 9007199254740991.0 || std::floor(gpaD) != gpaD || std::floor(lenD) != lenD)
    return ThrowType(env, "dirtyLogMark: gpa and len must be non-negative safe integers");
  if (lenD == 0) return Napi::Number::New(env, 0);
  Napi::ArrayBuffer ab = info[0].As<Napi::ArrayBuffer>();
  auto* log = static_cast<uint8_t*>(ab.Data());
  uint64_t bits = static_cast<uint64_t>(ab.ByteLength()) * 8;
  uint64_t gpa = static_cast<uint64_t>(gpaD), len = static_cast<uint64_t>(lenD);
  uint64_t first = gpa >> kLogPageShift, last = (gpa + len - 1) >> kLogPageShift;
  uint64_t beyond = 0;
  for (uint64_t p = first; p <= last; p++) {
    if (p >= bits) { beyond += last - p + 1; break; }
    __atomic_fetch_or(log + (p >> 3), static_cast<uint8_t>(1u << (p & 7)), __ATOMIC_RELAXED);
  }
  // The data and ring stores that made these pages dirty precede the marks (program order + the
  // locked instruction on x86); what follows the call (publishing used->idx) comes after.
  __atomic_thread_fence(__ATOMIC_SEQ_CST);
  return Napi::Number::New(env, static_cast<double>(beyond));
}

}  // namespace

void InitDirtyLog(Napi::Env env, Napi::Object exports) {
  exports.Set("dirtyLogMark", Napi::Function::New(env, DirtyLogMark));
}

}  // namespace vhu
