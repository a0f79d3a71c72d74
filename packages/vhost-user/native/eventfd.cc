// EventFd: kick/call/err notifications. The counter is read in native before the JS callback, so
// one callback covers every signal since the last wakeup (batched), and JS never needs a syscall.
#include "common.h"
#include <sys/eventfd.h>
#include <unistd.h>
#include <cerrno>

namespace vhu {
namespace {

class EventFd : public Napi::ObjectWrap<EventFd> {
 public:
  static Napi::Function Define(Napi::Env env) {
    return DefineClass(env, "EventFd", {
      InstanceMethod<&EventFd::Watch>("watch"),
      InstanceMethod<&EventFd::Unwatch>("unwatch"),
      InstanceMethod<&EventFd::Signal>("signal"),
      InstanceMethod<&EventFd::Close>("close"),
      InstanceMethod<&EventFd::SetRef>("setRef"),
      InstanceAccessor<&EventFd::Fd>("fd"),
    });
  }

  // new EventFd(fd) wraps (and then owns) fd; new EventFd(-1) creates a non-blocking eventfd.
  explicit EventFd(const Napi::CallbackInfo& info) : Napi::ObjectWrap<EventFd>(info), env_(info.Env()) {
    Napi::Env env = info.Env();
    if (info.Length() < 1 || !info[0].IsNumber()) { ThrowType(env, "EventFd(fd: number)"); return; }
    fd_ = info[0].As<Napi::Number>().Int32Value();
    if (fd_ < 0) {
      fd_ = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
      if (fd_ < 0) { ThrowSyscall(env, errno, "eventfd"); return; }
    }
  }

  ~EventFd() override { Shutdown(); }

 private:
  Napi::Value Fd(const Napi::CallbackInfo& info) { return Napi::Number::New(info.Env(), fd_); }

  // watch(cb): uv_poll on readability; replaces an earlier callback.
  Napi::Value Watch(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (info.Length() < 1 || !info[0].IsFunction()) return ThrowType(env, "watch(cb: () => void)");
    if (fd_ < 0) return ThrowSyscall(env, EBADF, "uv_poll_init");
    cb_ = Napi::Persistent(info[0].As<Napi::Function>());
    if (poll_ == nullptr) {
      uv_loop_t* loop = nullptr;
      napi_get_uv_event_loop(env, &loop);
      poll_ = new uv_poll_t;
      int rc = uv_poll_init(loop, poll_, fd_);
      if (rc != 0) { delete poll_; poll_ = nullptr; return ThrowSyscall(env, -rc, "uv_poll_init"); }
      poll_->data = this;
      uv_poll_start(poll_, UV_READABLE, OnPoll);
      if (!refd_) uv_unref(reinterpret_cast<uv_handle_t*>(poll_));
      if (async_ == nullptr) napi_async_init(env, Napi::Object::New(env), Napi::String::New(env, "blockwork:eventfd"), &async_);
      Ref();  // the loop holds us while watching
    }
    return env.Undefined();
  }

  static void OnPoll(uv_poll_t* h, int status, int) {
    auto* self = static_cast<EventFd*>(h->data);
    if (self == nullptr) return;
    uint64_t v;
    // Clear the counter first: a signal arriving after this read wakes us again.
    ssize_t r = read(self->fd_, &v, sizeof v);
    if (r != sizeof v && status >= 0) return;  // spurious wakeup (EAGAIN)
    Napi::HandleScope scope(self->env_);
    CallJs(self->env_, self->async_, self->cb_.Value(), 0, nullptr);
  }

  Napi::Value Unwatch(const Napi::CallbackInfo& info) {
    StopPoll();
    return info.Env().Undefined();
  }

  // signal(): adds 1 with one write(2). Returns 0 or -errno (EAGAIN only at counter overflow).
  Napi::Value Signal(const Napi::CallbackInfo& info) {
    uint64_t one = 1;
    ssize_t r = fd_ < 0 ? -1 : write(fd_, &one, sizeof one);
    return Napi::Number::New(info.Env(), r == sizeof one ? 0 : (fd_ < 0 ? -EBADF : -errno));
  }

  // setRef(on): whether a watched eventfd keeps the process alive (default false: set it true while
  // work is outstanding, as a bdev channel does with I/O in flight).
  Napi::Value SetRef(const Napi::CallbackInfo& info) {
    refd_ = info[0].ToBoolean();
    if (poll_ != nullptr) {
      if (refd_) uv_ref(reinterpret_cast<uv_handle_t*>(poll_));
      else uv_unref(reinterpret_cast<uv_handle_t*>(poll_));
    }
    return info.Env().Undefined();
  }

  Napi::Value Close(const Napi::CallbackInfo& info) {
    Shutdown();
    return info.Env().Undefined();
  }

  void StopPoll() {
    if (poll_ == nullptr) return;
    ClosePoll(poll_);
    Unref();
  }

  void Shutdown() {
    StopPoll();
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }

  napi_env env_;
  int fd_ = -1;
  bool refd_ = false;
  uv_poll_t* poll_ = nullptr;
  napi_async_context async_ = nullptr;
  Napi::FunctionReference cb_;
};

}  // namespace

Napi::Function DefineEventFd(Napi::Env env) { return EventFd::Define(env); }

}  // namespace vhu
