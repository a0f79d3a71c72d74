// Shared memory: memfd regions (the front end's "guest memory", inflight regions), MAP_SHARED
// mappings of received fds exposed as external ArrayBuffers, and the ordered loads/stores that
// virtqueue index updates need (JS has no acquire/release on a non-shared ArrayBuffer).
#include "common.h"
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <cerrno>
#include <mutex>
#include <unordered_map>

namespace vhu {
namespace {

// A live mapping. unmap() and the ArrayBuffer finalizer may run in either order (and the finalizer
// possibly during the detach inside unmap), so whichever comes first unmaps and the finalizer frees.
struct Mapping {
  void* base;
  size_t len;
  bool unmapped = false;
};
std::mutex g_mu;
std::unordered_map<void*, Mapping*> g_maps;  // keyed by the ArrayBuffer's data pointer

void Finalize(napi_env, void* data, void* hint) {
  auto* m = static_cast<Mapping*>(hint);
  std::lock_guard<std::mutex> lock(g_mu);
  auto it = g_maps.find(data);
  if (it != g_maps.end() && it->second == m) g_maps.erase(it);
  if (!m->unmapped) {
    GuardRemove(m->base);
    munmap(m->base, m->len);
  }
  delete m;
}

// mmap(fd, size, offset, writable) -> ArrayBuffer of `size` bytes (MAP_SHARED). The offset need not
// be page-aligned: the mapping starts at the page below it. Bounds against the file are checked in TS.
Napi::Value Mmap(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 4 || !info[0].IsNumber() || !info[1].IsNumber() || !info[2].IsNumber() || !info[3].IsBoolean())
    return ThrowType(env, "mmap(fd: number, size: number, offset: number, writable: boolean)");
  int fd = info[0].As<Napi::Number>().Int32Value();
  double size = info[1].As<Napi::Number>().DoubleValue(), offset = info[2].As<Napi::Number>().DoubleValue();
  if (!(size > 0) || !(offset >= 0)) return ThrowType(env, "mmap: size must be > 0 and offset >= 0");
  size_t page = static_cast<size_t>(sysconf(_SC_PAGESIZE));
  uint64_t off = static_cast<uint64_t>(offset), start = off & ~(uint64_t(page) - 1);
  size_t lead = static_cast<size_t>(off - start), len = lead + static_cast<size_t>(size);
  int prot = PROT_READ | (info[3].As<Napi::Boolean>().Value() ? PROT_WRITE : 0);
  void* base = mmap(nullptr, len, prot, MAP_SHARED, fd, static_cast<off_t>(start));
  if (base == MAP_FAILED) return ThrowSyscall(env, errno, "mmap");
  if (!GuardAdd(base, len)) {
    munmap(base, len);
    return ThrowSyscall(env, ENOMEM, "mmap (SIGBUS guard table full)");
  }
  auto* m = new Mapping{base, len};
  void* data = static_cast<uint8_t*>(base) + lead;
  {
    std::lock_guard<std::mutex> lock(g_mu);
    g_maps[data] = m;  // a stale entry for a reused address is replaced; Finalize checks identity
  }
  napi_value ab;
  napi_status st = napi_create_external_arraybuffer(env, data, static_cast<size_t>(size), Finalize, m, &ab);
  if (st != napi_ok) {
    std::lock_guard<std::mutex> lock(g_mu);
    g_maps.erase(data);
    GuardRemove(base);
    munmap(base, len);
    delete m;
    return ThrowSyscall(env, ENOMEM, "napi_create_external_arraybuffer");
  }
  return Napi::Value(env, ab);
}

// munmap(ab): unmaps now and detaches the ArrayBuffer, so every view of it becomes empty instead of
// pointing at unmapped memory. Idempotent.
Napi::Value Munmap(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsArrayBuffer()) return ThrowType(env, "munmap(buffer: ArrayBuffer)");
  Napi::ArrayBuffer ab = info[0].As<Napi::ArrayBuffer>();
  if (ab.ByteLength() == 0) return env.Undefined();
  void* data = ab.Data();
  {
    std::lock_guard<std::mutex> lock(g_mu);
    auto it = g_maps.find(data);
    if (it == g_maps.end()) return ThrowType(env, "munmap: not a mapping made by mmapFd");
    it->second->unmapped = true;
    GuardRemove(it->second->base);
    munmap(it->second->base, it->second->len);
    g_maps.erase(it);
  }
  napi_detach_arraybuffer(env, ab);
  return env.Undefined();
}

// memfdCreate(name, size) -> fd (MFD_CLOEXEC, sized with ftruncate).
// mappingPoisoned(ab): whether a SIGBUS on this mapping replaced it with anonymous zero pages (the
// peer truncated the file under it); false once unmapped.
Napi::Value MappingPoisoned(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsArrayBuffer()) return ThrowType(env, "mappingPoisoned(buffer: ArrayBuffer)");
  Napi::ArrayBuffer ab = info[0].As<Napi::ArrayBuffer>();
  if (ab.ByteLength() == 0) return Napi::Boolean::New(env, false);
  std::lock_guard<std::mutex> lock(g_mu);
  auto it = g_maps.find(ab.Data());
  return Napi::Boolean::New(env, it != g_maps.end() && GuardPoisoned(it->second->base));
}

Napi::Value MemfdCreate(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 2 || !info[0].IsString() || !info[1].IsNumber()) return ThrowType(env, "memfdCreate(name: string, size: number)");
  std::string name = info[0].As<Napi::String>().Utf8Value();
  double size = info[1].As<Napi::Number>().DoubleValue();
  if (!(size >= 0)) return ThrowType(env, "memfdCreate: size must be >= 0");
  int fd = static_cast<int>(syscall(SYS_memfd_create, name.c_str(), 1u /* MFD_CLOEXEC */));
  if (fd < 0) return ThrowSyscall(env, errno, "memfd_create");
  if (ftruncate(fd, static_cast<off_t>(size)) < 0) { int e = errno; ::close(fd); return ThrowSyscall(env, e, "ftruncate"); }
  return Napi::Number::New(env, fd);
}

Napi::Value CloseFd(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsNumber()) return ThrowType(env, "closeFd(fd: number)");
  if (::close(info[0].As<Napi::Number>().Int32Value()) < 0) return ThrowSyscall(env, errno, "close");
  return env.Undefined();
}

Napi::Value FdSize(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsNumber()) return ThrowType(env, "fdSize(fd: number)");
  struct stat st;
  if (fstat(info[0].As<Napi::Number>().Int32Value(), &st) < 0) return ThrowSyscall(env, errno, "fstat");
  return Napi::Number::New(env, static_cast<double>(st.st_size));
}

uint16_t* Slot16(const Napi::CallbackInfo& info) {
  if (info.Length() < 2 || !info[0].IsTypedArray() || !info[1].IsNumber()) return nullptr;
  Napi::TypedArray ta = info[0].As<Napi::TypedArray>();
  if (ta.TypedArrayType() != napi_uint16_array) return nullptr;
  uint32_t i = info[1].As<Napi::Number>().Uint32Value();
  if (i >= ta.ElementLength()) return nullptr;
  return ta.As<Napi::Uint16Array>().Data() + i;
}

// storeRelease16(view, index, value): every store the caller made before (descriptors, ring
// entries) becomes visible to the other process before this one. The N-API call is also a compiler
// barrier for the JIT, which could otherwise sink plain typed-array stores past the index store.
Napi::Value StoreRelease16(const Napi::CallbackInfo& info) {
  uint16_t* p = Slot16(info);
  if (p == nullptr || info.Length() < 3) return ThrowType(info.Env(), "storeRelease16(view: Uint16Array, index: number, value: number)");
  __atomic_store_n(p, static_cast<uint16_t>(info[2].As<Napi::Number>().Uint32Value()), __ATOMIC_RELEASE);
  return info.Env().Undefined();
}

// storeFence16: the same with a full (seq_cst) barrier, for "publish the index, then read the
// other side's suppression flag" (a release store alone lets the later load move before it).
Napi::Value StoreFence16(const Napi::CallbackInfo& info) {
  uint16_t* p = Slot16(info);
  if (p == nullptr || info.Length() < 3) return ThrowType(info.Env(), "storeFence16(view: Uint16Array, index: number, value: number)");
  __atomic_store_n(p, static_cast<uint16_t>(info[2].As<Napi::Number>().Uint32Value()), __ATOMIC_SEQ_CST);
  __atomic_thread_fence(__ATOMIC_SEQ_CST);
  return info.Env().Undefined();
}

// loadAcquire16(view, index): entries the other side wrote before this index are read after it.
Napi::Value LoadAcquire16(const Napi::CallbackInfo& info) {
  uint16_t* p = Slot16(info);
  if (p == nullptr) return ThrowType(info.Env(), "loadAcquire16(view: Uint16Array, index: number)");
  return Napi::Number::New(info.Env(), __atomic_load_n(p, __ATOMIC_ACQUIRE));
}

}  // namespace

// dirty-log.cc: marks in a shared mapping, registered with the other memory helpers.
void InitDirtyLog(Napi::Env env, Napi::Object exports);

void InitMemory(Napi::Env env, Napi::Object exports) {
  exports.Set("mmap", Napi::Function::New(env, Mmap));
  exports.Set("munmap", Napi::Function::New(env, Munmap));
  exports.Set("mappingPoisoned", Napi::Function::New(env, MappingPoisoned));
  exports.Set("memfdCreate", Napi::Function::New(env, MemfdCreate));
  exports.Set("closeFd", Napi::Function::New(env, CloseFd));
  exports.Set("fdSize", Napi::Function::New(env, FdSize));
  exports.Set("storeRelease16", Napi::Function::New(env, StoreRelease16));
  exports.Set("storeFence16", Napi::Function::New(env, StoreFence16));
  exports.Set("loadAcquire16", Napi::Function::New(env, LoadAcquire16));
  InitDirtyLog(env, exports);
}

}  // namespace vhu
