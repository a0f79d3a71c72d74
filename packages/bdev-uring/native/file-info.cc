// Control-plane helpers: what kind of file an fd is, its size and its O_DIRECT alignment, and
// whether io_uring can be set up at all in this process.
#include <napi.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <linux/io_uring.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <cerrno>
#include <cstdint>
#include <cstring>

namespace blockwork {

static Napi::Object SyscallFailure(Napi::Env env, int err, const char* syscall) {
  Napi::Object o = Napi::Object::New(env);
  o.Set("errno", Napi::Number::New(env, err));
  o.Set("syscall", Napi::String::New(env, syscall));
  return o;
}

// fileInfo(fd) -> {kind, size, logicalBlockSize, dioMemAlign, dioOffsetAlign} | {errno, syscall}
Napi::Value FileInfo(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsNumber()) {
    Napi::TypeError::New(env, "fileInfo(fd: number)").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  int fd = info[0].As<Napi::Number>().Int32Value();
  struct stat st;
  if (fstat(fd, &st) != 0) return SyscallFailure(env, errno, "fstat");
  const char* kind = S_ISBLK(st.st_mode) ? "block" : S_ISREG(st.st_mode) ? "file" : S_ISDIR(st.st_mode) ? "directory" : "other";
  double size = static_cast<double>(st.st_size);
  int lbs = 0;
  if (S_ISBLK(st.st_mode)) {
    uint64_t bytes = 0;
    if (ioctl(fd, BLKSSZGET, &lbs) != 0) return SyscallFailure(env, errno, "ioctl(BLKSSZGET)");
    if (ioctl(fd, BLKGETSIZE64, &bytes) != 0) return SyscallFailure(env, errno, "ioctl(BLKGETSIZE64)");
    size = static_cast<double>(bytes);
  }
  // STATX_DIOALIGN needs Linux 6.1 and filesystem support; zeros mean "not reported".
  uint32_t memAlign = 0, offAlign = 0;
  struct statx stx;
  std::memset(&stx, 0, sizeof stx);
  if (statx(fd, "", AT_EMPTY_PATH, STATX_DIOALIGN, &stx) == 0 && (stx.stx_mask & STATX_DIOALIGN)) {
    memAlign = stx.stx_dio_mem_align;
    offAlign = stx.stx_dio_offset_align;
  }
  Napi::Object o = Napi::Object::New(env);
  o.Set("kind", Napi::String::New(env, kind));
  o.Set("size", Napi::Number::New(env, size));
  o.Set("logicalBlockSize", Napi::Number::New(env, lbs));
  o.Set("dioMemAlign", Napi::Number::New(env, memAlign));
  o.Set("dioOffsetAlign", Napi::Number::New(env, offAlign));
  return o;
}

// probe() -> null when a ring can be set up, else {errno, syscall}.
Napi::Value Probe(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  io_uring_params p;
  std::memset(&p, 0, sizeof p);
  long fd = ::syscall(__NR_io_uring_setup, 1, &p);
  if (fd < 0) return SyscallFailure(env, errno, "io_uring_setup");
  close(static_cast<int>(fd));
  return env.Null();
}

}  // namespace blockwork
