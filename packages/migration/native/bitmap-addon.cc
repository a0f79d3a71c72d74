// Dirty bitmap in a file-backed MAP_SHARED mapping: open/ftruncate/mmap, lock-free atomic bit
// operations on the mapped 64-bit words, msync, flock, and a robust process-shared mutex kept in
// the file's header for multi-field header updates. The header's field layout belongs to
// src/bitmap-header.ts; this file only knows where the mutex and the bit words start.
#include <napi.h>

#include <cerrno>
#include <cstdint>
#include <cstring>
#include <fcntl.h>
#include <pthread.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

namespace {

constexpr size_t kHeaderBytes = 4096;  // bit words start here (page aligned)
constexpr size_t kMutexOffset = 512;   // pthread_mutex_t inside the header
constexpr size_t kSlotOffset = 1024;   // copy slots: granule+1 being copied, 0 = free
constexpr size_t kSlots = 64;
static_assert(sizeof(pthread_mutex_t) <= 256, "mutex slot too small");

void ThrowSyscall(Napi::Env env, int err, const char* syscall) {
  Napi::Error e = Napi::Error::New(env, std::string(syscall) + " failed: " + strerror(err));
  e.Set("errno", Napi::Number::New(env, err));
  e.Set("syscall", Napi::String::New(env, syscall));
  e.ThrowAsJavaScriptException();
}

bool IsIndex(const Napi::Value& v) {
  if (!v.IsNumber()) return false;
  double d = v.As<Napi::Number>().DoubleValue();
  return d >= 0 && d <= 9007199254740991.0 && d == static_cast<double>(static_cast<int64_t>(d));
}

class BitmapFile : public Napi::ObjectWrap<BitmapFile> {
 public:
  static Napi::Function Init(Napi::Env env) {
    return DefineClass(env, "BitmapFile", {
      InstanceMethod<&BitmapFile::Configure>("configure"),
      InstanceMethod<&BitmapFile::ReadHeader>("readHeader"),
      InstanceMethod<&BitmapFile::WriteHeader>("writeHeader"),
      InstanceMethod<&BitmapFile::InitMutex>("initMutex"),
      InstanceMethod<&BitmapFile::Lock>("lock"),
      InstanceMethod<&BitmapFile::Unlock>("unlock"),
      InstanceMethod<&BitmapFile::SetBit>("setBit"),
      InstanceMethod<&BitmapFile::ClearBit>("clearBit"),
      InstanceMethod<&BitmapFile::TestBit>("testBit"),
      InstanceMethod<&BitmapFile::MarkBytes>("markBytes"),
      InstanceMethod<&BitmapFile::SetRange>("setRange"),
      InstanceMethod<&BitmapFile::FindNextSet>("findNextSet"),
      InstanceMethod<&BitmapFile::CountSet>("countSet"),
      InstanceMethod<&BitmapFile::Msync>("msync"),
      InstanceMethod<&BitmapFile::TryLockFile>("tryLockFile"),
      InstanceMethod<&BitmapFile::Close>("close"),
      InstanceMethod<&BitmapFile::SlotSet>("slotSet"),
      InstanceMethod<&BitmapFile::RecoverSlots>("recoverSlots"),
      InstanceMethod<&BitmapFile::BitsView>("bitsView"),
      InstanceAccessor<&BitmapFile::FileBytes>("fileBytes"),
    });
  }

  // BitmapFile(path, createBytes): createBytes > 0 creates (O_CREAT|O_EXCL) and sizes the file;
  // 0 opens an existing file and maps its current size.
  BitmapFile(const Napi::CallbackInfo& info) : Napi::ObjectWrap<BitmapFile>(info) {
    Napi::Env env = info.Env();
    if (info.Length() < 2 || !info[0].IsString() || !IsIndex(info[1])) {
      Napi::TypeError::New(env, "BitmapFile(path: string, createBytes: number)").ThrowAsJavaScriptException();
      return;
    }
    std::string path = info[0].As<Napi::String>().Utf8Value();
    int64_t create = info[1].As<Napi::Number>().Int64Value();
    if (create != 0 && static_cast<size_t>(create) < kHeaderBytes) {
      Napi::TypeError::New(env, "createBytes must be 0 or at least the header size").ThrowAsJavaScriptException();
      return;
    }
    fd_ = create ? open(path.c_str(), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600) : open(path.c_str(), O_RDWR | O_CLOEXEC);
    if (fd_ < 0) { ThrowSyscall(env, errno, "open"); return; }
    if (create && ftruncate(fd_, create) != 0) { Fail(env, "ftruncate"); return; }
    struct stat st;
    if (fstat(fd_, &st) != 0) { Fail(env, "fstat"); return; }
    size_ = static_cast<size_t>(st.st_size);
    bytes_ = size_;
    if (bytes_ < kHeaderBytes) {
      // Too small to hold a header: report it as data, not a syscall failure (JS calls it corrupt).
      bytes_ = 0;
      return;
    }
    void* p = mmap(nullptr, bytes_, PROT_READ | PROT_WRITE, MAP_SHARED, fd_, 0);
    if (p == MAP_FAILED) { Fail(env, "mmap"); return; }
    base_ = static_cast<uint8_t*>(p);
    words_ = reinterpret_cast<uint64_t*>(base_ + kHeaderBytes);
    maxWords_ = (bytes_ - kHeaderBytes) / 8;
  }

  ~BitmapFile() {
    // A view handed to JS may outlive this object (it holds no reference to it): never unmap under
    // it. close() detaches the view first, so only a bitmap dropped without close() keeps its mapping.
    if (viewGiven_ && base_) {
      base_ = nullptr;
      words_ = nullptr;
    }
    Release();
  }

 private:
  void Fail(Napi::Env env, const char* syscall) {
    int e = errno;
    Release();
    ThrowSyscall(env, e, syscall);
  }

  void Release() {
    if (base_) munmap(base_, bytes_);
    base_ = nullptr;
    words_ = nullptr;
    maxWords_ = 0;
    nbits_ = 0;
    if (fd_ >= 0) close(fd_);
    fd_ = -1;
  }

  Napi::Value FileBytes(const Napi::CallbackInfo& info) { return Napi::Number::New(info.Env(), static_cast<double>(size_)); }

  // configure(granuleBytes, granuleCount): bounds for every bit operation. Returns false when the
  // file is too small for that many bits.
  Napi::Value Configure(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (info.Length() < 2 || !IsIndex(info[0]) || !IsIndex(info[1]) || info[0].As<Napi::Number>().Int64Value() == 0) {
      Napi::TypeError::New(env, "configure(granuleBytes: number > 0, granuleCount: number)").ThrowAsJavaScriptException();
      return env.Undefined();
    }
    uint64_t g = info[0].As<Napi::Number>().Int64Value();
    uint64_t n = info[1].As<Napi::Number>().Int64Value();
    if (!base_ || (n + 63) / 64 > maxWords_) return Napi::Boolean::New(env, false);
    granule_ = g;
    nbits_ = n;
    return Napi::Boolean::New(env, true);
  }

  bool NeedMap(Napi::Env env) {
    if (base_) return true;
    Napi::Error::New(env, "bitmap file is closed or smaller than its header").ThrowAsJavaScriptException();
    return false;
  }

  // Robust process-shared mutex: a holder killed mid-update leaves it EOWNERDEAD for the next
  // locker, which marks it consistent (the protected header fields are rewritten whole by the
  // caller, so a torn update is repaired by the next write). Returns 0, or 1 after a recovery.
  int LockMutex() {
    auto* m = reinterpret_cast<pthread_mutex_t*>(base_ + kMutexOffset);
    int rc = pthread_mutex_lock(m);
    if (rc == EOWNERDEAD) {
      pthread_mutex_consistent(m);
      return 1;
    }
    return rc == 0 ? 0 : -rc;
  }

  Napi::Value InitMutex(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (!NeedMap(env)) return env.Undefined();
    pthread_mutexattr_t a;
    pthread_mutexattr_init(&a);
    pthread_mutexattr_setpshared(&a, PTHREAD_PROCESS_SHARED);
    pthread_mutexattr_setrobust(&a, PTHREAD_MUTEX_ROBUST);
    int rc = pthread_mutex_init(reinterpret_cast<pthread_mutex_t*>(base_ + kMutexOffset), &a);
    pthread_mutexattr_destroy(&a);
    if (rc != 0) ThrowSyscall(env, rc, "pthread_mutex_init");
    return env.Undefined();
  }

  Napi::Value Lock(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (!NeedMap(env)) return env.Undefined();
    return Napi::Number::New(env, LockMutex());
  }

  Napi::Value Unlock(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (!NeedMap(env)) return env.Undefined();
    return Napi::Number::New(env, -pthread_mutex_unlock(reinterpret_cast<pthread_mutex_t*>(base_ + kMutexOffset)));
  }

  // readHeader(bytes): a copy of the first `bytes` (≤ 512) header bytes, taken under the mutex
  // unless `locked` says the caller holds it.
  Napi::Value ReadHeader(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (info.Length() < 1 || !IsIndex(info[0]) || info[0].As<Napi::Number>().Int64Value() > static_cast<int64_t>(kMutexOffset)) {
      Napi::TypeError::New(env, "readHeader(bytes: number <= 512, useMutex?: boolean)").ThrowAsJavaScriptException();
      return env.Undefined();
    }
    if (!NeedMap(env)) return env.Undefined();
    size_t n = info[0].As<Napi::Number>().Int64Value();
    bool useMutex = info.Length() > 1 && info[1].ToBoolean();
    if (useMutex && LockMutex() < 0) { ThrowSyscall(env, EINVAL, "pthread_mutex_lock"); return env.Undefined(); }
    Napi::Buffer<uint8_t> out = Napi::Buffer<uint8_t>::Copy(env, base_, n);
    if (useMutex) pthread_mutex_unlock(reinterpret_cast<pthread_mutex_t*>(base_ + kMutexOffset));
    return out;
  }

  // writeHeader(offset, data, useMutex): copies `data` into the header at `offset` (below the
  // mutex slot). Returns 1 when the mutex was recovered from a dead holder, else 0.
  Napi::Value WriteHeader(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (info.Length() < 2 || !IsIndex(info[0]) || !info[1].IsTypedArray() ||
        info[1].As<Napi::TypedArray>().TypedArrayType() != napi_uint8_array) {
      Napi::TypeError::New(env, "writeHeader(offset: number, data: Uint8Array, useMutex?: boolean)").ThrowAsJavaScriptException();
      return env.Undefined();
    }
    auto data = info[1].As<Napi::Uint8Array>();
    size_t off = info[0].As<Napi::Number>().Int64Value();
    if (off + data.ByteLength() > kMutexOffset) {
      Napi::TypeError::New(env, "writeHeader: range overlaps the mutex slot").ThrowAsJavaScriptException();
      return env.Undefined();
    }
    if (!NeedMap(env)) return env.Undefined();
    bool useMutex = info.Length() > 2 && info[2].ToBoolean();
    int rc = useMutex ? LockMutex() : 0;
    if (rc < 0) { ThrowSyscall(env, -rc, "pthread_mutex_lock"); return env.Undefined(); }
    memcpy(base_ + off, data.Data(), data.ByteLength());
    if (useMutex) pthread_mutex_unlock(reinterpret_cast<pthread_mutex_t*>(base_ + kMutexOffset));
    return Napi::Number::New(env, rc);
  }

  bool BitArg(const Napi::CallbackInfo& info, uint64_t* bit) {
    if (info.Length() < 1 || !IsIndex(info[0]) || static_cast<uint64_t>(info[0].As<Napi::Number>().Int64Value()) >= nbits_) {
      Napi::TypeError::New(info.Env(), "bit index out of range (or bitmap not configured)").ThrowAsJavaScriptException();
      return false;
    }
    *bit = info[0].As<Napi::Number>().Int64Value();
    return true;
  }

  // Single-word atomic read-modify-write on the shared mapping: the CPU's locked instruction makes
  // it atomic for every process mapping the file, which JS Atomics cannot promise here (they work on
  // a SharedArrayBuffer of this process; a Buffer over foreign memory is not one, and nothing in the
  // language spec covers other processes).
  Napi::Value SetBit(const Napi::CallbackInfo& info) {
    uint64_t b;
    if (!BitArg(info, &b)) return info.Env().Undefined();
    uint64_t mask = 1ULL << (b & 63);
    uint64_t old = __atomic_fetch_or(&words_[b >> 6], mask, __ATOMIC_SEQ_CST);
    return Napi::Boolean::New(info.Env(), (old & mask) != 0);
  }

  // Test-and-clear: returns whether the bit was set. The mirror clears before it copies, so a
  // write landing after the clear sets the bit again and the granule is copied once more.
  Napi::Value ClearBit(const Napi::CallbackInfo& info) {
    uint64_t b;
    if (!BitArg(info, &b)) return info.Env().Undefined();
    uint64_t mask = 1ULL << (b & 63);
    uint64_t old = __atomic_fetch_and(&words_[b >> 6], ~mask, __ATOMIC_SEQ_CST);
    return Napi::Boolean::New(info.Env(), (old & mask) != 0);
  }

  Napi::Value TestBit(const Napi::CallbackInfo& info) {
    uint64_t b;
    if (!BitArg(info, &b)) return info.Env().Undefined();
    uint64_t w = __atomic_load_n(&words_[b >> 6], __ATOMIC_ACQUIRE);
    return Napi::Boolean::New(info.Env(), (w >> (b & 63)) & 1);
  }

  // Sets bits [first, first+count): one atomic OR per word. Each word is all-or-nothing; a process
  // killed in the middle leaves a prefix set, which only over-approximates (never loses) dirtiness.
  void OrRange(uint64_t first, uint64_t count) {
    uint64_t end = first + count;
    while (first < end) {
      uint64_t w = first >> 6;
      uint64_t lo = first & 63;
      uint64_t n = end - first < 64 - lo ? end - first : 64 - lo;
      uint64_t mask = (n == 64 ? ~0ULL : ((1ULL << n) - 1)) << lo;
      __atomic_fetch_or(&words_[w], mask, __ATOMIC_SEQ_CST);
      first += n;
    }
  }

  Napi::Value SetRange(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (info.Length() < 2 || !IsIndex(info[0]) || !IsIndex(info[1])) {
      Napi::TypeError::New(env, "setRange(first: number, count: number)").ThrowAsJavaScriptException();
      return env.Undefined();
    }
    uint64_t first = info[0].As<Napi::Number>().Int64Value();
    uint64_t count = info[1].As<Napi::Number>().Int64Value();
    if (first + count > nbits_) {
      Napi::TypeError::New(env, "setRange: beyond the last granule").ThrowAsJavaScriptException();
      return env.Undefined();
    }
    OrRange(first, count);
    return env.Undefined();
  }

  // Hot path (every tracked write): marks the granules covering bytes [offset, offset+length).
  // Returns the number of granules, or 0 when the map is closed or the range is empty/out of
  // bounds (never throws on those: the filter must not throw).
  Napi::Value MarkBytes(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (info.Length() < 2 || !info[0].IsNumber() || !info[1].IsNumber()) {
      Napi::TypeError::New(env, "markBytes(offset: number, length: number)").ThrowAsJavaScriptException();
      return env.Undefined();
    }
    double off = info[0].As<Napi::Number>().DoubleValue();
    double len = info[1].As<Napi::Number>().DoubleValue();
    if (!words_ || nbits_ == 0 || !(len > 0) || !(off >= 0)) return Napi::Number::New(env, 0);
    uint64_t first = static_cast<uint64_t>(off) / granule_;
    uint64_t last = (static_cast<uint64_t>(off) + static_cast<uint64_t>(len) - 1) / granule_;
    if (last >= nbits_) last = nbits_ - 1;
    if (first > last) return Napi::Number::New(env, 0);
    OrRange(first, last - first + 1);
    return Napi::Number::New(env, static_cast<double>(last - first + 1));
  }

  // findNextSet(from): index of the first set bit at or after `from`, or -1.
  Napi::Value FindNextSet(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (info.Length() < 1 || !IsIndex(info[0])) {
      Napi::TypeError::New(env, "findNextSet(from: number)").ThrowAsJavaScriptException();
      return env.Undefined();
    }
    uint64_t from = info[0].As<Napi::Number>().Int64Value();
    uint64_t nwords = (nbits_ + 63) / 64;
    for (uint64_t w = from >> 6; w < nwords; w++) {
      uint64_t v = __atomic_load_n(&words_[w], __ATOMIC_ACQUIRE);
      if (w == from >> 6) v &= ~0ULL << (from & 63);
      if (v) {
        uint64_t bit = (w << 6) + __builtin_ctzll(v);
        return Napi::Number::New(env, bit < nbits_ ? static_cast<double>(bit) : -1);
      }
    }
    return Napi::Number::New(env, -1);
  }

  Napi::Value CountSet(const Napi::CallbackInfo& info) {
    uint64_t nwords = (nbits_ + 63) / 64;
    uint64_t n = 0;
    for (uint64_t w = 0; w < nwords; w++) {
      uint64_t v = __atomic_load_n(&words_[w], __ATOMIC_RELAXED);
      if (w == nwords - 1 && (nbits_ & 63)) v &= (1ULL << (nbits_ & 63)) - 1;
      n += __builtin_popcountll(v);
    }
    return Napi::Number::New(info.Env(), static_cast<double>(n));
  }

  // msync(MS_SYNC) of the whole mapping: a process crash never needs it (the page cache is the
  // shared copy), a host crash does. Returns 0 or -errno.
  Napi::Value Msync(const Napi::CallbackInfo& info) {
    if (!base_) return Napi::Number::New(info.Env(), -EBADF);
    return Napi::Number::New(info.Env(), msync(base_, bytes_, MS_SYNC) == 0 ? 0 : -errno);
  }

  // flock(LOCK_EX|LOCK_NB): one job (one daemon) drives a bitmap at a time. 0 or -errno (EWOULDBLOCK).
  Napi::Value TryLockFile(const Napi::CallbackInfo& info) {
    if (fd_ < 0) return Napi::Number::New(info.Env(), -EBADF);
    return Napi::Number::New(info.Env(), flock(fd_, LOCK_EX | LOCK_NB) == 0 ? 0 : -errno);
  }

  // The mirror clears a granule's bit before copying it. Until the target write completes, the
  // granule's index sits in a copy slot in the file, so a crash mid-copy cannot lose it: attach
  // merges every occupied slot back into the bits (RecoverSlots). slotSet(slot, granule + 1) or
  // slotSet(slot, 0) to free it; single-word atomic stores.
  Napi::Value SlotSet(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (info.Length() < 2 || !IsIndex(info[0]) || !IsIndex(info[1]) || info[0].As<Napi::Number>().Int64Value() >= static_cast<int64_t>(kSlots)) {
      Napi::TypeError::New(env, "slotSet(slot: number < 64, value: number)").ThrowAsJavaScriptException();
      return env.Undefined();
    }
    if (!base_) return env.Undefined();
    auto* slots = reinterpret_cast<uint64_t*>(base_ + kSlotOffset);
    __atomic_store_n(&slots[info[0].As<Napi::Number>().Int64Value()], static_cast<uint64_t>(info[1].As<Napi::Number>().Int64Value()), __ATOMIC_SEQ_CST);
    return env.Undefined();
  }

  // Sets the bit of every occupied slot (within bounds) and frees the slot. Returns how many.
  Napi::Value RecoverSlots(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (!NeedMap(env)) return env.Undefined();
    auto* slots = reinterpret_cast<uint64_t*>(base_ + kSlotOffset);
    uint32_t n = 0;
    for (size_t i = 0; i < kSlots; i++) {
      uint64_t v = __atomic_exchange_n(&slots[i], 0, __ATOMIC_SEQ_CST);
      if (v != 0 && v - 1 < nbits_) {
        OrRange(v - 1, 1);
        n++;
      }
    }
    return Napi::Number::New(env, n);
  }

  // bitsView(): an ArrayBuffer over the mapped bit words (no copy), for plain reads on the hot path
  // (is a granule already dirty?) without a native call. Only reads are meant: setting bits must stay
  // an atomic RMW. close() detaches it (length 0), so a stale view reads nothing rather than freed memory.
  Napi::Value BitsView(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (!NeedMap(env)) return env.Undefined();
    if (!view_.IsEmpty()) {
      Napi::Value v = view_.Value();
      if (!v.IsEmpty() && v.IsArrayBuffer()) return v;
    }
    Napi::ArrayBuffer ab = Napi::ArrayBuffer::New(env, words_, maxWords_ * 8);
    view_ = Napi::Reference<Napi::ArrayBuffer>::New(ab, 1);
    viewGiven_ = true;
    return ab;
  }

  Napi::Value Close(const Napi::CallbackInfo& info) {
    if (!view_.IsEmpty()) {
      Napi::ArrayBuffer ab = view_.Value();
      if (!ab.IsEmpty() && !ab.IsDetached()) ab.Detach();
      view_.Reset();
    }
    viewGiven_ = false;
    Release();
    return info.Env().Undefined();
  }

  int fd_ = -1;
  uint8_t* base_ = nullptr;
  size_t bytes_ = 0;  // mapped
  size_t size_ = 0;   // file size at open
  uint64_t* words_ = nullptr;
  uint64_t maxWords_ = 0;
  uint64_t nbits_ = 0;
  uint64_t granule_ = 1;
  Napi::Reference<Napi::ArrayBuffer> view_;
  bool viewGiven_ = false;
};

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  exports.Set("BitmapFile", BitmapFile::Init(env));
  return exports;
}

}  // namespace

NODE_API_MODULE(blockwork_migration, Init)
