// Aligned I/O buffers: O_DIRECT and DMA need memory whose address (not only length) is a multiple
// of the device's alignment, which neither Buffer.alloc nor ArrayBuffer can promise.
#include <napi.h>
#include <cerrno>
#include <cstdint>
#include <cstdlib>
#include <cstring>

namespace {

void FreeAligned(Napi::Env, void* data) { std::free(data); }

bool IsPowerOfTwo(uint64_t v) { return v != 0 && (v & (v - 1)) == 0; }

// allocAligned(size, alignment) -> Buffer, zero-filled, freed when the Buffer is collected.
Napi::Value AllocAligned(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 2 || !info[0].IsNumber() || !info[1].IsNumber()) {
    Napi::TypeError::New(env, "allocAligned(size: number, alignment: number)").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  double size = info[0].As<Napi::Number>().DoubleValue();
  double align = info[1].As<Napi::Number>().DoubleValue();
  if (!(size >= 0) || size > 4294967296.0 || !(align >= 1) || align > 1048576.0 ||
      !IsPowerOfTwo(static_cast<uint64_t>(align))) {
    Napi::RangeError::New(env, "allocAligned: size must be 0..4 GiB and alignment a power of two up to 1 MiB")
        .ThrowAsJavaScriptException();
    return env.Undefined();
  }
  size_t bytes = static_cast<size_t>(size);
  size_t alignment = static_cast<size_t>(align);
  if (alignment < sizeof(void*)) alignment = sizeof(void*);
  void* mem = nullptr;
  // A zero-length request still gets a real allocation so the Buffer has a valid, aligned pointer.
  int rc = posix_memalign(&mem, alignment, bytes == 0 ? alignment : bytes);
  if (rc != 0) {
    Napi::Error err = Napi::Error::New(env, "posix_memalign failed");
    err.Set("errno", Napi::Number::New(env, rc));
    err.Set("syscall", Napi::String::New(env, "posix_memalign"));
    err.ThrowAsJavaScriptException();
    return env.Undefined();
  }
  std::memset(mem, 0, bytes == 0 ? alignment : bytes);
  return Napi::Buffer<uint8_t>::New(env, static_cast<uint8_t*>(mem), bytes, FreeAligned);
}

// addressAlignment(view) -> the largest power of two (capped at 1 MiB) dividing the view's address,
// so callers can check alignment without handing raw pointers to JS.
Napi::Value AddressAlignment(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsTypedArray()) {
    Napi::TypeError::New(env, "addressAlignment(view: Uint8Array)").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  Napi::TypedArray ta = info[0].As<Napi::TypedArray>();
  uintptr_t addr = reinterpret_cast<uintptr_t>(ta.ArrayBuffer().Data()) + ta.ByteOffset();
  uintptr_t cap = 1u << 20;
  uintptr_t a = addr == 0 ? cap : (addr & (~addr + 1));
  return Napi::Number::New(env, static_cast<double>(a > cap ? cap : a));
}

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  exports.Set("allocAligned", Napi::Function::New(env, AllocAligned));
  exports.Set("addressAlignment", Napi::Function::New(env, AddressAlignment));
  return exports;
}

}  // namespace

namespace blockwork {
Napi::Value LockFile(const Napi::CallbackInfo& info);
Napi::Value UnlockFile(const Napi::CallbackInfo& info);
}

static Napi::Object InitAll(Napi::Env env, Napi::Object exports) {
  Init(env, exports);
  exports.Set("lockFile", Napi::Function::New(env, blockwork::LockFile));
  exports.Set("unlockFile", Napi::Function::New(env, blockwork::UnlockFile));
  return exports;
}

NODE_API_MODULE(blockwork_core, InitAll)
