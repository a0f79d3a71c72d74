// Advisory lock on a file, held by an fd the process keeps open: the kernel drops it when the
// process exits for any reason (SIGKILL included), which a PID file cannot promise.
#include <napi.h>
#include <cerrno>
#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

namespace blockwork {

static Napi::Value ErrnoResult(Napi::Env env, int err, const char* syscall) {
  Napi::Object r = Napi::Object::New(env);
  r.Set("errno", Napi::Number::New(env, err));
  r.Set("syscall", Napi::String::New(env, syscall));
  return r;
}

// lockFile(path) -> fd (number) on success, or {errno, syscall} when open or flock fails.
Napi::Value LockFile(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsString()) {
    Napi::TypeError::New(env, "lockFile(path: string)").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  std::string path = info[0].As<Napi::String>().Utf8Value();
  int fd = open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (fd < 0) return ErrnoResult(env, errno, "open");
  if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
    int err = errno;
    close(fd);
    return ErrnoResult(env, err, "flock");
  }
  return Napi::Number::New(env, fd);
}

// unlockFile(fd): releases the lock by closing the fd.
Napi::Value UnlockFile(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsNumber()) {
    Napi::TypeError::New(env, "unlockFile(fd: number)").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  close(info[0].As<Napi::Number>().Int32Value());
  return env.Undefined();
}

}  // namespace blockwork
