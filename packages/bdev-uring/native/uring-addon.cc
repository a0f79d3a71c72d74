// UringRing: one io_uring per channel. Submission takes a whole batch per call; completions arrive
// through an eventfd watched by a uv_poll on Node's loop and reach JS in one callback per batch.
#include <napi.h>
#include <uv.h>
#include <sys/eventfd.h>
#include <sys/uio.h>
#include <unistd.h>
#include <linux/falloc.h>
#include <cerrno>
#include <algorithm>
#include <vector>

#include "ring.h"
#include <blockwork/spin.h>

namespace blockwork {

Napi::Value FileInfo(const Napi::CallbackInfo& info);
Napi::Value Probe(const Napi::CallbackInfo& info);

namespace {

// Batch descriptor layout shared with src/native.ts: six doubles per I/O.
enum Op { kRead = 0, kWrite = 1, kFsync = 2, kPunch = 3, kZero = 4 };
constexpr uint32_t kStride = 6;

Napi::Value ThrowSyscall(Napi::Env env, int err, const char* syscall) {
  Napi::Error e = Napi::Error::New(env, std::string(syscall) + " failed");
  e.Set("errno", Napi::Number::New(env, err));
  e.Set("syscall", Napi::String::New(env, syscall));
  e.ThrowAsJavaScriptException();
  return env.Undefined();
}

class UringRing : public Napi::ObjectWrap<UringRing> {
 public:
  static Napi::Function Define(Napi::Env env) {
    return DefineClass(env, "UringRing", {
      InstanceMethod<&UringRing::Submit>("submit"),
      InstanceMethod<&UringRing::Close>("close"),
      InstanceAccessor<&UringRing::SqEntries>("sqEntries"),
      InstanceAccessor<&UringRing::Inflight>("inflight"),
      InstanceAccessor<&UringRing::Mode>("mode"),
      InstanceAccessor<&UringRing::SpinStats>("spinStats"),
    });
  }

  // new UringRing(fd, entries, ids: Uint32Array, results: Int32Array, onComplete(n),
  //               options?: {plain?: boolean, spinUs?: number, spinMaxInflight?: number})
  explicit UringRing(const Napi::CallbackInfo& info) : Napi::ObjectWrap<UringRing>(info), env_(info.Env()) {
    Napi::Env env = info.Env();
    if (info.Length() < 5 || !info[0].IsNumber() || !info[1].IsNumber() || !info[2].IsTypedArray() ||
        !info[3].IsTypedArray() || !info[4].IsFunction() ||
        info[2].As<Napi::TypedArray>().TypedArrayType() != napi_uint32_array ||
        info[3].As<Napi::TypedArray>().TypedArrayType() != napi_int32_array ||
        info[2].As<Napi::TypedArray>().ElementLength() != info[3].As<Napi::TypedArray>().ElementLength() ||
        info[2].As<Napi::TypedArray>().ElementLength() == 0) {
      Napi::TypeError::New(env, "UringRing(fd: number, entries: number, ids: Uint32Array, results: Int32Array "
                                "(same non-zero length), onComplete: (n: number) => void)").ThrowAsJavaScriptException();
      return;
    }
    fd_ = info[0].As<Napi::Number>().Int32Value();
    uint32_t entries = info[1].As<Napi::Number>().Uint32Value();
    Napi::Uint32Array ids = info[2].As<Napi::Uint32Array>();
    Napi::Int32Array res = info[3].As<Napi::Int32Array>();
    ids_ = ids.Data();
    res_ = res.Data();
    cap_ = ids.ElementLength();
    ids_ref_ = Napi::Persistent(ids);
    res_ref_ = Napi::Persistent(res);
    cb_ = Napi::Persistent(info[4].As<Napi::Function>());
    RingMode best = kDefer;
    if (info.Length() > 5 && info[5].IsObject()) {
      Napi::Object o = info[5].As<Napi::Object>();
      if (o.Get("plain").ToBoolean()) best = kPlain;
      Napi::Value us = o.Get("spinUs"), qd = o.Get("spinMaxInflight");
      spinner_.policy.Configure(us.IsNumber() ? static_cast<uint64_t>(std::max(0.0, us.As<Napi::Number>().DoubleValue()) * 1000) : 0,
                      qd.IsNumber() ? qd.As<Napi::Number>().Uint32Value() : 0);
    }
    const char* syscall = "io_uring_setup";
    int rc = RingSetup(&ring_, entries, best, &syscall);
    if (rc < 0) { Shutdown(); ThrowSyscall(env, -rc, syscall); return; }
    efd_ = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (efd_ < 0) { int e = errno; Shutdown(); ThrowSyscall(env, e, "eventfd"); return; }
    rc = RegisterEventfd(&ring_, efd_);
    if (rc < 0) { Shutdown(); ThrowSyscall(env, -rc, "io_uring_register"); return; }
    uv_loop_t* loop = nullptr;
    napi_get_uv_event_loop(env, &loop);
    poll_ = new uv_poll_t;
    uv_poll_init(loop, poll_, efd_);
    poll_->data = this;
    uv_poll_start(poll_, UV_READABLE, OnPoll);
    // Idle rings must not keep the process alive; Submit refs the handle while I/O is in flight.
    uv_unref(reinterpret_cast<uv_handle_t*>(poll_));
    spinner_.Init(loop, this);
    napi_async_init(env, Napi::Object::New(env), Napi::String::New(env, "blockwork:uring"), &async_);
    iovs_.resize(ring_.sq_entries);
  }

  ~UringRing() override { Shutdown(); }

 private:
  Napi::Value SqEntries(const Napi::CallbackInfo& info) { return Napi::Number::New(info.Env(), ring_.sq_entries); }
  Napi::Value Inflight(const Napi::CallbackInfo& info) { return Napi::Number::New(info.Env(), inflight_); }
  Napi::Value SpinStats(const Napi::CallbackInfo& info) {
    Napi::Object o = Napi::Object::New(info.Env());
    o.Set("hits", Napi::Number::New(info.Env(), static_cast<double>(spinner_.policy.hits_total)));
    o.Set("misses", Napi::Number::New(info.Env(), static_cast<double>(spinner_.policy.misses_total)));
    o.Set("contended", Napi::Number::New(info.Env(), static_cast<double>(spinner_.policy.contended_total)));
    return o;
  }
  Napi::Value Mode(const Napi::CallbackInfo& info) {
    return Napi::String::New(info.Env(), RingDeferred(&ring_) ? "defer" : "plain");
  }

  // submit(count, desc: Float64Array, bufs: Uint8Array[]) -> SQEs accepted (the rest stays with the
  // caller: the SQ is full), or -errno when io_uring_enter failed and nothing of this batch was queued.
  Napi::Value Submit(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (info.Length() < 3 || !info[0].IsNumber() || !info[1].IsTypedArray() || !info[2].IsArray() ||
        info[1].As<Napi::TypedArray>().TypedArrayType() != napi_float64_array) {
      Napi::TypeError::New(env, "submit(count: number, desc: Float64Array, bufs: Uint8Array[])").ThrowAsJavaScriptException();
      return env.Undefined();
    }
    if (ring_.fd < 0) return ThrowSyscall(env, EBADF, "io_uring_enter");
    Napi::Float64Array descArr = info[1].As<Napi::Float64Array>();
    Napi::Array bufs = info[2].As<Napi::Array>();
    uint32_t count = info[0].As<Napi::Number>().Uint32Value();
    if (count > descArr.ElementLength() / kStride) {
      Napi::TypeError::New(env, "submit: count exceeds the descriptor array").ThrowAsJavaScriptException();
      return env.Undefined();
    }
    unsigned n = std::min<unsigned>(count, RingSqSpace(&ring_));
    if (!Collect(env, descArr.Data(), n, bufs)) return env.Undefined();
    const double* d = descArr.Data();
    for (unsigned i = 0; i < n; i++, d += kStride) Fill(RingNextSqe(&ring_), d);
    int rc = RingSubmit(&ring_);
    // EAGAIN/EBUSY: the kernel is short of resources; the SQEs stay published and are entered again
    // at the next reap or submit. Anything else: none of the batch reached the kernel.
    if (rc < 0 && rc != -EAGAIN && rc != -EBUSY) {
      RingRewind(&ring_, std::min(n, ring_.unsubmitted));
      return Napi::Number::New(env, rc);
    }
    inflight_ += n;
    UpdateRef();
    spinner_.Update();
    return Napi::Number::New(env, n);
  }

  // Validates the first n entries and gathers their buffers into scratch_ before any SQE is touched.
  bool Collect(Napi::Env env, const double* d, unsigned n, Napi::Array bufs) {
    scratch_.clear();
    uint32_t nbufs = bufs.Length();
    for (unsigned i = 0; i < n; i++, d += kStride) {
      double op = d[0], slot = d[1], off = d[2], first = d[4], cnt = d[5];
      bool rw = op == kRead || op == kWrite;
      if (!(op >= kRead && op <= kZero) || !(slot >= 0 && slot < iovs_.size()) || !(off >= 0) ||
          (rw && !(cnt >= 1 && first >= 0 && first + cnt <= nbufs && first == scratch_.size()))) {
        Napi::TypeError::New(env, "submit: malformed descriptor entry").ThrowAsJavaScriptException();
        return false;
      }
      for (uint32_t k = 0; rw && k < static_cast<uint32_t>(cnt); k++) {
        Napi::Value v = bufs[static_cast<uint32_t>(first) + k];
        // One napi_get_typedarray_info per buffer: it type-checks and gives the data pointer.
        napi_typedarray_type type;
        size_t length = 0;
        void* data = nullptr;
        if (napi_get_typedarray_info(env, v, &type, &length, &data, nullptr, nullptr) != napi_ok ||
            type != napi_uint8_array) {
          Napi::TypeError::New(env, "submit: bufs must hold Uint8Arrays").ThrowAsJavaScriptException();
          return false;
        }
        scratch_.push_back(iovec{data, length});
      }
    }
    return true;
  }

  void Fill(io_uring_sqe* sqe, const double* d) {
    unsigned op = static_cast<unsigned>(d[0]);
    unsigned slot = static_cast<unsigned>(d[1]);
    sqe->fd = fd_;
    sqe->user_data = slot;
    sqe->off = static_cast<uint64_t>(d[2]);
    if (op == kRead || op == kWrite) {
      size_t first = static_cast<size_t>(d[4]), cnt = static_cast<size_t>(d[5]);
      if (cnt == 1) {
        sqe->opcode = op == kRead ? IORING_OP_READ : IORING_OP_WRITE;
        sqe->addr = reinterpret_cast<uint64_t>(scratch_[first].iov_base);
        sqe->len = static_cast<uint32_t>(scratch_[first].iov_len);
      } else {
        // READV/WRITEV: the iovec array lives in the slot until the slot is reused after completion.
        std::vector<iovec>& v = iovs_[slot];
        v.assign(scratch_.begin() + first, scratch_.begin() + first + cnt);
        sqe->opcode = op == kRead ? IORING_OP_READV : IORING_OP_WRITEV;
        sqe->addr = reinterpret_cast<uint64_t>(v.data());
        sqe->len = static_cast<uint32_t>(cnt);
      }
    } else if (op == kFsync) {
      sqe->opcode = IORING_OP_FSYNC;
      sqe->fsync_flags = IORING_FSYNC_DATASYNC;
    } else {
      // IORING_OP_FALLOCATE takes the length in addr and the mode in len.
      sqe->opcode = IORING_OP_FALLOCATE;
      sqe->addr = static_cast<uint64_t>(d[3]);
      sqe->len = FALLOC_FL_KEEP_SIZE | (op == kPunch ? FALLOC_FL_PUNCH_HOLE : FALLOC_FL_ZERO_RANGE);
    }
  }

  static void OnPoll(uv_poll_t* h, int status, int events) {
    auto* self = static_cast<UringRing*>(h->data);
    if (self == nullptr) return;
    uint64_t v;
    // Reset the counter before reaping: a CQE posted after this read signals again.
    ssize_t r = read(self->efd_, &v, sizeof v);
    (void)r;
    // Deferred rings: the eventfd fired, but the CQEs post only when we enter with GETEVENTS.
    // Enter even when IORING_SQ_TASKRUN is clear: work completed by io-wq (fsync, fallocate) is
    // signalled without that flag.
    self->force_getevents_ = true;
    self->Reap();
    self->spinner_.Update();
  }

  // IdleSpinner's owner interface (spin.h).
  friend class blockwork::IdleSpinner<UringRing>;
  unsigned SpinInflight() const { return inflight_; }
  bool SpinAlive() const { return ring_.fd >= 0; }
  bool SpinPending() const { return RingWorkPending(&ring_); }
  void SpinDeliver() { Reap(); }
  void SpinClearSignal() {
    uint64_t v;
    ssize_t r = read(efd_, &v, sizeof v);
    (void)r;
  }

  void Reap() {
    Napi::HandleScope scope(env_);
    while (ring_.fd >= 0) {
      // Deferred rings: the eventfd fired from the IRQ, but the CQEs post only when we enter.
      if (force_getevents_ || ring_.unsubmitted > 0 || RingTaskrunPending(&ring_)) RingGetEvents(&ring_);
      force_getevents_ = false;
      unsigned head = *ring_.cq_head;
      unsigned tail = __atomic_load_n(ring_.cq_tail, __ATOMIC_ACQUIRE);
      if (head == tail) break;
      size_t n = 0;
      for (; head != tail && n < cap_; head++, n++) {
        const io_uring_cqe* c = &ring_.cqes[head & *ring_.cq_mask];
        ids_[n] = static_cast<uint32_t>(c->user_data);
        res_[n] = c->res;
      }
      // Release: we are done reading these CQEs before the kernel may overwrite them.
      __atomic_store_n(ring_.cq_head, head, __ATOMIC_RELEASE);
      inflight_ -= static_cast<unsigned>(n);
      if (ring_.unsubmitted > 0) RingSubmit(&ring_);
      spinner_.CompletionSeen();
      UpdateRef();
      napi_value argv = Napi::Number::New(env_, static_cast<double>(n));
      napi_value global;
      napi_get_global(env_, &global);
      napi_status st = napi_make_callback(env_, async_, global, cb_.Value(), 1, &argv, nullptr);
      if (st == napi_pending_exception) {
        napi_value err;
        napi_get_and_clear_last_exception(env_, &err);
        napi_fatal_exception(env_, err);
        break;
      }
    }
  }

  void UpdateRef() {
    if (poll_ == nullptr) return;
    bool want = inflight_ > 0;
    if (want == refd_) return;
    refd_ = want;
    if (want) uv_ref(reinterpret_cast<uv_handle_t*>(poll_));
    else uv_unref(reinterpret_cast<uv_handle_t*>(poll_));
  }

  // close(): unmaps the ring and closes the ring fd and eventfd (the file fd belongs to the bdev).
  Napi::Value Close(const Napi::CallbackInfo& info) {
    Shutdown();
    return info.Env().Undefined();
  }

  void Shutdown() {
    spinner_.Close();
    if (poll_ != nullptr) {
      poll_->data = nullptr;
      uv_poll_stop(poll_);
      uv_close(reinterpret_cast<uv_handle_t*>(poll_), [](uv_handle_t* h) { delete reinterpret_cast<uv_poll_t*>(h); });
      poll_ = nullptr;
    }
    RingTeardown(&ring_);
    if (efd_ >= 0) close(efd_);
    efd_ = -1;
    if (async_ != nullptr) napi_async_destroy(env_, async_);
    async_ = nullptr;
    iovs_.clear();
  }

  napi_env env_;
  Ring ring_;
  int fd_ = -1;
  int efd_ = -1;
  uv_poll_t* poll_ = nullptr;
  blockwork::IdleSpinner<UringRing> spinner_;
  bool force_getevents_ = false;  // the eventfd fired: enter with GETEVENTS even without IORING_SQ_TASKRUN
  napi_async_context async_ = nullptr;
  Napi::FunctionReference cb_;
  Napi::Reference<Napi::Uint32Array> ids_ref_;
  Napi::Reference<Napi::Int32Array> res_ref_;
  uint32_t* ids_ = nullptr;
  int32_t* res_ = nullptr;
  size_t cap_ = 0;
  unsigned inflight_ = 0;
  bool refd_ = false;
  std::vector<std::vector<iovec>> iovs_;
  std::vector<iovec> scratch_;
};

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  exports.Set("UringRing", UringRing::Define(env));
  exports.Set("fileInfo", Napi::Function::New(env, FileInfo));
  exports.Set("probe", Napi::Function::New(env, Probe));
  return exports;
}

}  // namespace
}  // namespace blockwork

static Napi::Object InitAll(Napi::Env env, Napi::Object exports) { return blockwork::Init(env, exports); }

NODE_API_MODULE(blockwork_uring, InitAll)
