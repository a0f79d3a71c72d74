// File-level calls for the aio bdev: open with or without O_DIRECT, geometry (block devices and
// regular files), and the operations Linux AIO cannot do asynchronously (fallocate, fdatasync),
// which run in batches on the libuv thread pool so the event loop never blocks on them.
#include <fcntl.h>
#include <linux/falloc.h>
#include <linux/fs.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <vector>

#include "common.h"

namespace blockwork_aio {
namespace {

enum BlockingOp : uint8_t { kPunchHole = 0, kZeroRange = 1, kFdatasync = 2 };

// openFile(path, readonly, direct) -> fd | {errno, syscall}
Napi::Value OpenFile(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 3 || !info[0].IsString() || !info[1].IsBoolean() || !info[2].IsBoolean()) {
    ThrowType(env, "openFile(path: string, readonly: boolean, direct: boolean)");
    return env.Undefined();
  }
  std::string path = info[0].As<Napi::String>().Utf8Value();
  int flags = (info[1].As<Napi::Boolean>().Value() ? O_RDONLY : O_RDWR) | O_CLOEXEC;
  if (info[2].As<Napi::Boolean>().Value()) flags |= O_DIRECT;
  int fd = open(path.c_str(), flags);
  if (fd < 0) return Failure(env, errno, "open");
  return Napi::Number::New(env, fd);
}

// fileInfo(fd) -> {kind, size, logicalBlockSize, dioMemAlign, dioOffsetAlign} | {errno, syscall}
Napi::Value FileInfo(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsNumber()) {
    ThrowType(env, "fileInfo(fd: number)");
    return env.Undefined();
  }
  int fd = info[0].As<Napi::Number>().Int32Value();
  struct stat st;
  if (fstat(fd, &st) < 0) return Failure(env, errno, "fstat");
  Napi::Object o = Napi::Object::New(env);
  uint64_t size = static_cast<uint64_t>(st.st_size);
  uint32_t lbs = 0;
  const char* kind = "other";
  if (S_ISREG(st.st_mode)) {
    kind = "file";
  } else if (S_ISDIR(st.st_mode)) {
    kind = "directory";
  } else if (S_ISBLK(st.st_mode)) {
    kind = "block";
    int ssz = 0;
    if (ioctl(fd, BLKGETSIZE64, &size) < 0) return Failure(env, errno, "ioctl(BLKGETSIZE64)");
    if (ioctl(fd, BLKSSZGET, &ssz) < 0) return Failure(env, errno, "ioctl(BLKSSZGET)");
    lbs = static_cast<uint32_t>(ssz);
  }
  uint32_t memAlign = 0, offAlign = 0;
  struct statx sx;
  // STATX_DIOALIGN (Linux 6.1+) tells the real O_DIRECT constraints; 0 means "unknown".
  if (statx(fd, "", AT_EMPTY_PATH, STATX_DIOALIGN, &sx) == 0 && (sx.stx_mask & STATX_DIOALIGN)) {
    memAlign = sx.stx_dio_mem_align;
    offAlign = sx.stx_dio_offset_align;
  }
  o.Set("kind", Napi::String::New(env, kind));
  o.Set("size", Napi::Number::New(env, static_cast<double>(size)));
  o.Set("logicalBlockSize", Napi::Number::New(env, lbs));
  o.Set("dioMemAlign", Napi::Number::New(env, memAlign));
  o.Set("dioOffsetAlign", Napi::Number::New(env, offAlign));
  return o;
}

Napi::Value CloseFile(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsNumber()) {
    ThrowType(env, "closeFile(fd: number)");
    return env.Undefined();
  }
  if (close(info[0].As<Napi::Number>().Int32Value()) < 0) return Failure(env, errno, "close");
  return Napi::Number::New(env, 0);
}

int RunOne(uint8_t op, int fd, off_t off, off_t len) {
  int rc;
  switch (op) {
    case kPunchHole:
      rc = fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, off, len);
      break;
    case kZeroRange:
      rc = fallocate(fd, FALLOC_FL_ZERO_RANGE | FALLOC_FL_KEEP_SIZE, off, len);
      // Some filesystems punch holes but cannot zero ranges; a hole reads back as zeros too.
      if (rc < 0 && errno == EOPNOTSUPP) rc = fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, off, len);
      break;
    default:
      rc = fdatasync(fd);
  }
  return rc < 0 ? -errno : 0;
}

// probeFallocate(fd, zeroRange, offset, length) -> 0 | errno. Synchronous: control plane only, and
// called with a range past EOF so the file's contents and size are untouched (KEEP_SIZE).
Napi::Value ProbeFallocate(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 4 || !info[0].IsNumber() || !info[1].IsBoolean() || !info[2].IsNumber() || !info[3].IsNumber()) {
    ThrowType(env, "probeFallocate(fd: number, zeroRange: boolean, offset: number, length: number)");
    return env.Undefined();
  }
  int mode = info[1].As<Napi::Boolean>().Value() ? FALLOC_FL_ZERO_RANGE : FALLOC_FL_PUNCH_HOLE;
  int rc = fallocate(info[0].As<Napi::Number>().Int32Value(), mode | FALLOC_FL_KEEP_SIZE,
                     static_cast<off_t>(info[2].As<Napi::Number>().Int64Value()),
                     static_cast<off_t>(info[3].As<Napi::Number>().Int64Value()));
  return Napi::Number::New(env, rc < 0 ? errno : 0);
}

// One batch of blocking operations on the thread pool; results land in a JS Int32Array (0 or
// -errno per entry) and `done()` runs once, inside an async context so microtasks flush.
class BlockingBatch : public Napi::AsyncWorker {
 public:
  BlockingBatch(Napi::Function done, Napi::Int32Array results, uint32_t n)
      : Napi::AsyncWorker(done, "BlockworkAioBlocking"), ops_(n), fds_(n), offsets_(n), lengths_(n),
        results_(Napi::Persistent(results)), out_(n) {}

  std::vector<uint8_t> ops_;
  std::vector<int> fds_;
  std::vector<off_t> offsets_;
  std::vector<off_t> lengths_;

 protected:
  void Execute() override {
    for (size_t i = 0; i < ops_.size(); i++) out_[i] = RunOne(ops_[i], fds_[i], offsets_[i], lengths_[i]);
  }

  void OnOK() override {
    Napi::HandleScope scope(Env());
    int32_t* dst = results_.Value().Data();
    for (size_t i = 0; i < out_.size(); i++) dst[i] = out_[i];
    Callback().Call({});
  }

 private:
  Napi::Reference<Napi::Int32Array> results_;
  std::vector<int32_t> out_;
};

// runBlocking(count, ops, fds, offsets, lengths, results, done): inputs are copied before return,
// so JS may reuse its arrays at once; `results` must stay untouched until done() runs.
Napi::Value RunBlocking(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 7 || !info[0].IsNumber() || !info[1].IsTypedArray() || !info[2].IsTypedArray() ||
      !info[3].IsTypedArray() || !info[4].IsTypedArray() || !info[5].IsTypedArray() || !info[6].IsFunction()) {
    ThrowType(env, "runBlocking(count, ops: Uint8Array, fds: Int32Array, offsets: Float64Array, lengths: Float64Array, results: Int32Array, done)");
    return env.Undefined();
  }
  uint32_t n = info[0].As<Napi::Number>().Uint32Value();
  Napi::Uint8Array ops = info[1].As<Napi::Uint8Array>();
  Napi::Int32Array fds = info[2].As<Napi::Int32Array>();
  Napi::Float64Array offsets = info[3].As<Napi::Float64Array>();
  Napi::Float64Array lengths = info[4].As<Napi::Float64Array>();
  Napi::Int32Array results = info[5].As<Napi::Int32Array>();
  if (ops.ElementLength() < n || fds.ElementLength() < n || offsets.ElementLength() < n ||
      lengths.ElementLength() < n || results.ElementLength() < n) {
    ThrowType(env, "runBlocking: every array needs at least count elements");
    return env.Undefined();
  }
  auto* w = new BlockingBatch(info[6].As<Napi::Function>(), results, n);
  for (uint32_t i = 0; i < n; i++) {
    w->ops_[i] = ops[i];
    w->fds_[i] = fds[i];
    w->offsets_[i] = static_cast<off_t>(offsets[i]);
    w->lengths_[i] = static_cast<off_t>(lengths[i]);
  }
  w->Queue();
  return env.Undefined();
}

}  // namespace

Napi::Object InitFileOps(Napi::Env env, Napi::Object exports) {
  exports.Set("openFile", Napi::Function::New(env, OpenFile));
  exports.Set("fileInfo", Napi::Function::New(env, FileInfo));
  exports.Set("closeFile", Napi::Function::New(env, CloseFile));
  exports.Set("probeFallocate", Napi::Function::New(env, ProbeFallocate));
  exports.Set("runBlocking", Napi::Function::New(env, RunBlocking));
  return exports;
}

}  // namespace blockwork_aio
