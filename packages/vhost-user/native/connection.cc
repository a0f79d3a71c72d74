// Connection: one connected vhost-user stream socket on Node's loop. Reads reassemble frames
// (12-byte header + payload) from any split the kernel delivers; fds arrive via SCM_RIGHTS and
// belong to the message being assembled when they arrive. Sends queue when the socket is full.
#include "common.h"
#include <sys/socket.h>
#include <sys/un.h>
#include <fcntl.h>
#include <unistd.h>
#include <cerrno>
#include <cstring>
#include <deque>
#include <vector>

namespace vhu {
namespace {

// Ancillary space for more fds than a message may carry, so a peer sending too many is detected
// (and its fds closed) rather than silently truncated by MSG_CTRUNC.
constexpr size_t kCmsgFds = 64;

struct TxEntry {
  std::vector<uint8_t> bytes;
  size_t off = 0;
  std::vector<int> fds;  // dup'd copies, sent with the first byte, closed once sent
};

class Connection : public Napi::ObjectWrap<Connection> {
 public:
  static Napi::Function Define(Napi::Env env) {
    return DefineClass(env, "Connection", {
      InstanceMethod<&Connection::Send>("send"),
      InstanceMethod<&Connection::Close>("close"),
      InstanceMethod<&Connection::SetRef>("setRef"),
    });
  }

  // new Connection(fd, onMessage(request, flags, payload: Buffer, fds: number[]), onClose(errno, reason))
  explicit Connection(const Napi::CallbackInfo& info) : Napi::ObjectWrap<Connection>(info), env_(info.Env()) {
    Napi::Env env = info.Env();
    if (info.Length() < 3 || !info[0].IsNumber() || !info[1].IsFunction() || !info[2].IsFunction()) {
      closed_ = true;
      ThrowType(env, "Connection(fd: number, onMessage: Function, onClose: Function)");
      return;
    }
    fd_ = info[0].As<Napi::Number>().Int32Value();
    on_message_ = Napi::Persistent(info[1].As<Napi::Function>());
    on_close_ = Napi::Persistent(info[2].As<Napi::Function>());
    uv_loop_t* loop = nullptr;
    napi_get_uv_event_loop(env, &loop);
    poll_ = new uv_poll_t;
    int rc = uv_poll_init(loop, poll_, fd_);
    if (rc != 0) { delete poll_; poll_ = nullptr; ::close(fd_); fd_ = -1; closed_ = true; ThrowSyscall(env, -rc, "uv_poll_init"); return; }
    poll_->data = this;
    uv_poll_start(poll_, UV_READABLE, OnPoll);
    napi_async_init(env, Napi::Object::New(env), Napi::String::New(env, "blockwork:vhost-user"), &async_);
    rx_.resize(kHeaderSize + kMaxPayload);
    // Stay alive while the socket is open even if JS drops its wrapper: the loop still calls us.
    Ref();
  }

  ~Connection() override { Teardown(); }

 private:
  static void OnPoll(uv_poll_t* h, int status, int events) {
    auto* self = static_cast<Connection*>(h->data);
    if (self == nullptr) return;
    Napi::HandleScope scope(self->env_);
    if (status < 0) { self->Fail(-status, "poll error"); return; }
    if (events & UV_WRITABLE) self->Flush();
    if (!self->closed_ && (events & UV_READABLE)) self->ReadLoop();
  }

  void ReadLoop() {
    while (!closed_) {
      size_t frame = kHeaderSize + (have_ >= kHeaderSize ? size_ : 0);
      iovec iov{rx_.data() + have_, frame - have_};
      alignas(cmsghdr) char ctl[CMSG_SPACE(sizeof(int) * kCmsgFds)];
      msghdr msg{};
      msg.msg_iov = &iov;
      msg.msg_iovlen = 1;
      msg.msg_control = ctl;
      msg.msg_controllen = sizeof ctl;
      ssize_t n = recvmsg(fd_, &msg, MSG_CMSG_CLOEXEC | MSG_DONTWAIT);
      if (n < 0) {
        if (errno == EINTR) continue;
        if (errno == EAGAIN || errno == EWOULDBLOCK) return;
        Fail(errno, "recvmsg failed");
        return;
      }
      TakeFds(&msg);
      if (msg.msg_flags & MSG_CTRUNC || pending_fds_.size() > kMaxFds) { Fail(EPROTO, "more than 8 fds with one message"); return; }
      if (n == 0) {
        if (have_ == 0 && pending_fds_.empty()) Fail(0, "peer closed the connection");
        else Fail(EPROTO, "peer closed in the middle of a message (" + std::to_string(have_) + " bytes received)");
        return;
      }
      bool had_header = have_ >= kHeaderSize;
      have_ += static_cast<size_t>(n);
      if (!had_header && have_ == kHeaderSize) {
        uint32_t size;
        memcpy(&size, rx_.data() + 8, 4);
        if (size > kMaxPayload) { Fail(EPROTO, "message size " + std::to_string(size) + " exceeds the 4096-byte limit"); return; }
        size_ = size;
      }
      if (have_ == kHeaderSize + size_) Deliver();
    }
  }

  void TakeFds(msghdr* msg) {
    for (cmsghdr* c = CMSG_FIRSTHDR(msg); c != nullptr; c = CMSG_NXTHDR(msg, c)) {
      if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) continue;
      size_t count = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
      const int* fds = reinterpret_cast<const int*>(CMSG_DATA(c));
      for (size_t i = 0; i < count; i++) {
        int fd;
        memcpy(&fd, fds + i, sizeof fd);
        pending_fds_.push_back(fd);
      }
    }
  }

  void Deliver() {
    uint32_t request, flags;
    memcpy(&request, rx_.data(), 4);
    memcpy(&flags, rx_.data() + 4, 4);
    napi_value argv[4];
    argv[0] = Napi::Number::New(env_, request);
    argv[1] = Napi::Number::New(env_, flags);
    argv[2] = Napi::Buffer<uint8_t>::Copy(env_, rx_.data() + kHeaderSize, size_);
    Napi::Array fds = Napi::Array::New(env_, pending_fds_.size());
    for (size_t i = 0; i < pending_fds_.size(); i++) fds.Set(static_cast<uint32_t>(i), Napi::Number::New(env_, pending_fds_[i]));
    argv[3] = fds;
    // From here the fds belong to the JS consumer.
    pending_fds_.clear();
    have_ = 0;
    size_ = 0;
    CallJs(env_, async_, on_message_.Value(), 4, argv);
  }

  // send(frame: Uint8Array, fds: number[]) -> 0, or -errno when the socket failed (the caller closes).
  Napi::Value Send(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (info.Length() < 2 || !info[0].IsTypedArray() || !info[1].IsArray() ||
        info[0].As<Napi::TypedArray>().TypedArrayType() != napi_uint8_array) {
      return ThrowType(env, "send(frame: Uint8Array, fds: number[])");
    }
    if (closed_) return Napi::Number::New(env, -EPIPE);
    Napi::Uint8Array bytes = info[0].As<Napi::Uint8Array>();
    Napi::Array arr = info[1].As<Napi::Array>();
    std::vector<int> fds;
    for (uint32_t i = 0; i < arr.Length(); i++) {
      Napi::Value v = arr[i];
      if (!v.IsNumber()) return ThrowType(env, "send: fds must be numbers");
      fds.push_back(v.As<Napi::Number>().Int32Value());
    }
    if (fds.size() > kMaxFds) return ThrowType(env, "send: at most 8 fds per message");
    size_t off = 0;
    if (tx_.empty()) {
      ssize_t n = SendMsg(bytes.Data(), bytes.ByteLength(), fds);
      if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK) return Napi::Number::New(env, -errno);
      if (n >= 0) {
        off = static_cast<size_t>(n);
        if (off == bytes.ByteLength()) return Napi::Number::New(env, 0);
        fds.clear();  // sent with the first byte
      }
    }
    TxEntry e;
    e.bytes.assign(bytes.Data() + off, bytes.Data() + bytes.ByteLength());
    // The caller may close its fds as soon as send returns, so queued messages hold duplicates.
    for (int fd : fds) {
      int d = fcntl(fd, F_DUPFD_CLOEXEC, 0);
      if (d < 0) { int err = errno; for (int x : e.fds) ::close(x); return ThrowSyscall(env, err, "fcntl"); }
      e.fds.push_back(d);
    }
    tx_.push_back(std::move(e));
    uv_poll_start(poll_, UV_READABLE | UV_WRITABLE, OnPoll);
    return Napi::Number::New(env, 0);
  }

  ssize_t SendMsg(const uint8_t* p, size_t len, const std::vector<int>& fds) {
    iovec iov{const_cast<uint8_t*>(p), len};
    alignas(cmsghdr) char ctl[CMSG_SPACE(sizeof(int) * kMaxFds)];
    msghdr msg{};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    if (!fds.empty()) {
      msg.msg_control = ctl;
      msg.msg_controllen = CMSG_SPACE(sizeof(int) * fds.size());
      cmsghdr* c = CMSG_FIRSTHDR(&msg);
      c->cmsg_level = SOL_SOCKET;
      c->cmsg_type = SCM_RIGHTS;
      c->cmsg_len = CMSG_LEN(sizeof(int) * fds.size());
      memcpy(CMSG_DATA(c), fds.data(), sizeof(int) * fds.size());
    }
    ssize_t n;
    do n = sendmsg(fd_, &msg, MSG_NOSIGNAL | MSG_DONTWAIT); while (n < 0 && errno == EINTR);
    return n;
  }

  void Flush() {
    while (!tx_.empty()) {
      TxEntry& e = tx_.front();
      ssize_t n = SendMsg(e.bytes.data() + e.off, e.bytes.size() - e.off, e.fds);
      if (n < 0) {
        if (errno == EAGAIN || errno == EWOULDBLOCK) return;
        Fail(errno, "sendmsg failed");
        return;
      }
      for (int fd : e.fds) ::close(fd);
      e.fds.clear();
      e.off += static_cast<size_t>(n);
      if (e.off == e.bytes.size()) tx_.pop_front();
    }
    uv_poll_start(poll_, UV_READABLE, OnPoll);
  }

  void Fail(int err, const std::string& reason) {
    if (closed_) return;
    Teardown();
    napi_value argv[2] = {Napi::Number::New(env_, err), Napi::String::New(env_, reason)};
    CallJs(env_, async_, on_close_.Value(), 2, argv);
  }

  Napi::Value Close(const Napi::CallbackInfo& info) {
    Teardown();
    return info.Env().Undefined();
  }

  // setRef(on): whether the open socket keeps the process alive (default true, like net.Socket).
  Napi::Value SetRef(const Napi::CallbackInfo& info) {
    if (poll_ != nullptr) {
      if (info[0].ToBoolean()) uv_ref(reinterpret_cast<uv_handle_t*>(poll_));
      else uv_unref(reinterpret_cast<uv_handle_t*>(poll_));
    }
    return info.Env().Undefined();
  }

  void Teardown() {
    if (closed_) return;
    closed_ = true;
    ClosePoll(poll_);
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
    // fds of a message that never completed have no owner: close them here.
    for (int fd : pending_fds_) ::close(fd);
    pending_fds_.clear();
    for (TxEntry& e : tx_) for (int fd : e.fds) ::close(fd);
    tx_.clear();
    Unref();
  }

  napi_env env_;
  int fd_ = -1;
  bool closed_ = false;
  uv_poll_t* poll_ = nullptr;
  napi_async_context async_ = nullptr;
  Napi::FunctionReference on_message_, on_close_;
  std::vector<uint8_t> rx_;
  size_t have_ = 0;
  uint32_t size_ = 0;
  std::vector<int> pending_fds_;
  std::deque<TxEntry> tx_;
};

}  // namespace

Napi::Function DefineConnection(Napi::Env env) { return Connection::Define(env); }

// connectNonBlocking(path): a non-blocking connect for a back end in client mode that retries every
// few ms. Expected failures are returned, not thrown: fd >= 0, or -errno (ENOENT, ECONNREFUSED: no
// listener yet; EAGAIN: the listener's backlog is full). On AF_UNIX a non-blocking connect never
// returns EINPROGRESS: it is queued in the listener's backlog at once or fails. A connection sitting
// in the backlog counts as connected; its first message arrives when the listener accepts it.
Napi::Value ConnectNonBlocking(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsString()) return ThrowType(env, "connectNonBlocking(path: string)");
  std::string path = info[0].As<Napi::String>().Utf8Value();
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (path.size() >= sizeof addr.sun_path) return Napi::Number::New(env, -ENAMETOOLONG);
  memcpy(addr.sun_path, path.c_str(), path.size() + 1);
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return Napi::Number::New(env, -errno);
  int rc;
  do rc = connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr); while (rc < 0 && errno == EINTR);
  if (rc < 0) { int e = errno; ::close(fd); return Napi::Number::New(env, -e); }
  return Napi::Number::New(env, fd);
}

}  // namespace vhu
