// Listener: a vhost-user server socket. The socket file gets the requested mode from the start
// (fchmod on the socket before bind sets the inode's mode, minus umask), then chmod makes it exact,
// so there is no window where a wider mode is visible.
#include "common.h"
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>
#include <cerrno>
#include <cstring>

namespace vhu {
namespace {

class Listener : public Napi::ObjectWrap<Listener> {
 public:
  static Napi::Function Define(Napi::Env env) {
    return DefineClass(env, "Listener", {
      InstanceMethod<&Listener::Close>("close"),
      InstanceMethod<&Listener::SetRef>("setRef"),
    });
  }

  // new Listener(path, mode, onConnection(fd)); throws {errno, syscall}.
  explicit Listener(const Napi::CallbackInfo& info) : Napi::ObjectWrap<Listener>(info), env_(info.Env()) {
    Napi::Env env = info.Env();
    if (info.Length() < 3 || !info[0].IsString() || !info[1].IsNumber() || !info[2].IsFunction()) {
      ThrowType(env, "Listener(path: string, mode: number, onConnection: (fd: number) => void)");
      return;
    }
    path_ = info[0].As<Napi::String>().Utf8Value();
    mode_t mode = info[1].As<Napi::Number>().Uint32Value() & 07777;
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    if (path_.size() >= sizeof addr.sun_path) { ThrowSyscall(env, ENAMETOOLONG, "bind"); return; }
    memcpy(addr.sun_path, path_.c_str(), path_.size() + 1);
    fd_ = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd_ < 0) { ThrowSyscall(env, errno, "socket"); return; }
    const char* call = nullptr;
    if (fchmod(fd_, mode) < 0) call = "fchmod";
    else if (bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) < 0) call = "bind";
    else if (chmod(path_.c_str(), mode) < 0) { call = "chmod"; bound_ = true; }
    else if (listen(fd_, 128) < 0) { call = "listen"; bound_ = true; }
    if (call != nullptr) { int e = errno; Teardown(); ThrowSyscall(env, e, call); return; }
    bound_ = true;
    on_conn_ = Napi::Persistent(info[2].As<Napi::Function>());
    uv_loop_t* loop = nullptr;
    napi_get_uv_event_loop(env, &loop);
    poll_ = new uv_poll_t;
    uv_poll_init(loop, poll_, fd_);
    poll_->data = this;
    uv_poll_start(poll_, UV_READABLE, OnPoll);
    napi_async_init(env, Napi::Object::New(env), Napi::String::New(env, "blockwork:vhost-user-listener"), &async_);
    Ref();
  }

  ~Listener() override { Teardown(); }

 private:
  static void OnPoll(uv_poll_t* h, int status, int) {
    auto* self = static_cast<Listener*>(h->data);
    if (self == nullptr || status < 0) return;
    Napi::HandleScope scope(self->env_);
    while (self->fd_ >= 0) {
      int c = accept4(self->fd_, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
      if (c < 0) {
        if (errno == EINTR || errno == ECONNABORTED) continue;
        // EAGAIN: drained. EMFILE and friends: leave the connection queued and try on the next wakeup.
        return;
      }
      napi_value argv[1] = {Napi::Number::New(self->env_, c)};
      CallJs(self->env_, self->async_, self->on_conn_.Value(), 1, argv);
    }
  }

  // close(): stops accepting, closes the socket and unlinks its path. Accepted connections stay open.
  Napi::Value Close(const Napi::CallbackInfo& info) {
    Teardown();
    return info.Env().Undefined();
  }

  Napi::Value SetRef(const Napi::CallbackInfo& info) {
    if (poll_ != nullptr) {
      if (info[0].ToBoolean()) uv_ref(reinterpret_cast<uv_handle_t*>(poll_));
      else uv_unref(reinterpret_cast<uv_handle_t*>(poll_));
    }
    return info.Env().Undefined();
  }

  void Teardown() {
    bool was_open = fd_ >= 0;
    ClosePoll(poll_);
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
    if (bound_) unlink(path_.c_str());
    bound_ = false;
    if (was_open && !on_conn_.IsEmpty()) Unref();
  }

  napi_env env_;
  std::string path_;
  int fd_ = -1;
  bool bound_ = false;
  uv_poll_t* poll_ = nullptr;
  napi_async_context async_ = nullptr;
  Napi::FunctionReference on_conn_;
};

}  // namespace

Napi::Function DefineListener(Napi::Env env) { return Listener::Define(env); }

}  // namespace vhu
