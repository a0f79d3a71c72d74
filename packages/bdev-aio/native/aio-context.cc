// One Linux AIO context (raw io_setup/io_submit, no libaio) with an eventfd watched by a uv_poll on
// Node's loop. Submission takes a whole batch in one call; completions are reaped from the kernel's
// completion ring in user space and handed to JS in one napi_make_callback per batch.
#include <linux/aio_abi.h>
#include <sys/eventfd.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <unistd.h>
#include <uv.h>

#include <cerrno>
#include <cstring>
#include <vector>

#include "common.h"
#include <blockwork/spin.h>

namespace blockwork_aio {
namespace {

// The completion ring the kernel maps at the context address (fs/aio.c). Not in uapi headers, so
// the layout is checked through magic, incompat_features and header_length before use.
struct AioRing {
  unsigned id;
  unsigned nr;
  unsigned head;
  unsigned tail;
  unsigned magic;
  unsigned compat_features;
  unsigned incompat_features;
  unsigned header_length;
  struct io_event events[0];
};
constexpr unsigned kAioRingMagic = 0xa10a10a1;

enum Op : uint8_t { kRead = 0, kWrite = 1, kFdsync = 2 };

class AioContext : public Napi::ObjectWrap<AioContext> {
 public:
  static Napi::Function Define(Napi::Env env) {
    return DefineClass(env, "AioContext", {
      InstanceMethod<&AioContext::Submit>("submit"),
      InstanceMethod<&AioContext::Destroy>("destroy"),
      InstanceAccessor<&AioContext::Inflight>("inflight"),
      InstanceAccessor<&AioContext::UsesRing>("usesRing"),
      InstanceMethod<&AioContext::SetSpin>("setSpin"),
      InstanceAccessor<&AioContext::SpinStats>("spinStats"),
    });
  }

  // new AioContext(depth, {ops, fds, offsets, slots}, {slots, results}, onComplete(n))
  explicit AioContext(const Napi::CallbackInfo& info) : Napi::ObjectWrap<AioContext>(info) {
    Napi::Env env = info.Env();
    if (info.Length() < 4 || !info[0].IsNumber() || !info[1].IsObject() || !info[2].IsObject() ||
        !info[3].IsFunction()) {
      ThrowType(env, "new AioContext(depth, submitArrays, completionArrays, onComplete)");
      return;
    }
    depth_ = info[0].As<Napi::Number>().Uint32Value();
    Napi::Object sub = info[1].As<Napi::Object>();
    Napi::Object comp = info[2].As<Napi::Object>();
    if (depth_ < 1 || depth_ > 65536 || !sub.Get("ops").IsTypedArray() || !sub.Get("fds").IsTypedArray() ||
        !sub.Get("offsets").IsTypedArray() || !sub.Get("slots").IsTypedArray() ||
        !comp.Get("slots").IsTypedArray() || !comp.Get("results").IsTypedArray()) {
      ThrowType(env, "AioContext: depth 1..65536 and typed arrays ops, fds, offsets, slots / slots, results");
      return;
    }
    subOps_ = Napi::Persistent(sub.Get("ops").As<Napi::Uint8Array>());
    subFds_ = Napi::Persistent(sub.Get("fds").As<Napi::Int32Array>());
    subOffsets_ = Napi::Persistent(sub.Get("offsets").As<Napi::Float64Array>());
    subSlots_ = Napi::Persistent(sub.Get("slots").As<Napi::Uint32Array>());
    compSlots_ = Napi::Persistent(comp.Get("slots").As<Napi::Uint32Array>());
    compResults_ = Napi::Persistent(comp.Get("results").As<Napi::Float64Array>());
    if (subOps_.Value().ElementLength() < depth_ || subFds_.Value().ElementLength() < depth_ ||
        subOffsets_.Value().ElementLength() < depth_ || subSlots_.Value().ElementLength() < depth_ ||
        compSlots_.Value().ElementLength() < 1 ||
        compResults_.Value().ElementLength() < compSlots_.Value().ElementLength()) {
      ThrowType(env, "AioContext: submission arrays need depth elements, results as many as slots");
      return;
    }
    // The arrays live as long as the context (persistent refs) and are never detached; getting their
    // data once also moves small on-heap arrays off the V8 heap, so the pointers stay valid.
    ops_ = subOps_.Value().Data();
    fds_ = subFds_.Value().Data();
    offsets_ = subOffsets_.Value().Data();
    slots_ = subSlots_.Value().Data();
    outSlots_ = compSlots_.Value().Data();
    outResults_ = compResults_.Value().Data();
    outCap_ = static_cast<uint32_t>(compSlots_.Value().ElementLength());
    onComplete_ = Napi::Persistent(info[3].As<Napi::Function>());
    asyncCtx_ = new Napi::AsyncContext(env, "BlockworkAioCompletion", Value());
    iocbs_.resize(depth_);
    ptrs_.resize(depth_);
    iovs_.resize(depth_);
    events_.resize(compSlots_.Value().ElementLength());

    if (syscall(SYS_io_setup, depth_, &ctx_) < 0) {
      ThrowSyscall(env, errno, "io_setup");
      return;
    }
    efd_ = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (efd_ < 0) {
      int err = errno;
      syscall(SYS_io_destroy, ctx_);
      ThrowSyscall(env, err, "eventfd");
      return;
    }
    const AioRing* ring = reinterpret_cast<const AioRing*>(ctx_);
    useRing_ = ring->magic == kAioRingMagic && ring->incompat_features == 0 &&
               ring->header_length == sizeof(AioRing) && ring->nr > 0;
    uv_loop_t* loop = nullptr;
    napi_get_uv_event_loop(env, &loop);
    poll_ = new uv_poll_t;
    poll_->data = this;
    uv_poll_init(loop, poll_, efd_);
    uv_poll_start(poll_, UV_READABLE, OnPoll);
    // Idle contexts must not keep the process alive; Submit refs the handle while I/O is in flight.
    uv_unref(reinterpret_cast<uv_handle_t*>(poll_));
    spinner_.Init(loop, this);
    open_ = true;
  }

  ~AioContext() override {
    Teardown();
    delete asyncCtx_;
  }

 private:
  // submit(start, end, iovLists): issues the batch [start, end) of the submission arrays in one
  // io_submit. Returns how many the kernel took (it may take fewer), or -errno if it took none.
  Napi::Value Submit(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (info.Length() < 3 || !info[0].IsNumber() || !info[1].IsNumber() || !info[2].IsArray()) {
      ThrowType(env, "submit(start: number, end: number, iovLists: Uint8Array[][])");
      return env.Undefined();
    }
    uint32_t start = info[0].As<Napi::Number>().Uint32Value();
    uint32_t end = info[1].As<Napi::Number>().Uint32Value();
    Napi::Array lists = info[2].As<Napi::Array>();
    if (!open_ || end > depth_ || start > end || lists.Length() < end) {
      ThrowType(env, "submit: context destroyed, or range outside depth / iovLists");
      return env.Undefined();
    }
    const uint8_t* ops = ops_;
    const int32_t* fds = fds_;
    const double* offsets = offsets_;
    const uint32_t* slots = slots_;
    for (uint32_t i = start; i < end; i++) {
      uint32_t slot = slots[i];
      if (slot >= depth_ || ops[i] > kFdsync) {
        ThrowType(env, "submit: slot outside depth or unknown op");
        return env.Undefined();
      }
      iocb& cb = iocbs_[slot];
      std::memset(&cb, 0, sizeof cb);
      cb.aio_data = slot;
      cb.aio_fildes = static_cast<uint32_t>(fds[i]);
      cb.aio_offset = static_cast<int64_t>(offsets[i]);
      cb.aio_flags = IOCB_FLAG_RESFD;
      cb.aio_resfd = static_cast<uint32_t>(efd_);
      if (ops[i] == kFdsync) {
        cb.aio_lio_opcode = IOCB_CMD_FDSYNC;
      } else if (!FillIovecs(env, lists.Get(i), slot)) {
        return env.Undefined();
      } else {
        cb.aio_lio_opcode = ops[i] == kRead ? IOCB_CMD_PREADV : IOCB_CMD_PWRITEV;
        cb.aio_buf = reinterpret_cast<uint64_t>(iovs_[slot].data());
        cb.aio_nbytes = iovs_[slot].size();
      }
      ptrs_[i - start] = &cb;
    }
    if (end == start) return Napi::Number::New(env, 0);
    long rc = syscall(SYS_io_submit, ctx_, static_cast<long>(end - start), ptrs_.data());
    if (rc < 0) return Napi::Number::New(env, -errno);
    if (rc > 0) {
      if (inflight_ == 0) uv_ref(reinterpret_cast<uv_handle_t*>(poll_));
      inflight_ += static_cast<uint32_t>(rc);
      spinner_.Update();
    }
    return Napi::Number::New(env, static_cast<double>(rc));
  }

  bool FillIovecs(Napi::Env env, Napi::Value v, uint32_t slot) {
    if (!v.IsArray()) {
      ThrowType(env, "submit: iovLists[i] must be an array of Uint8Array for read/write");
      return false;
    }
    Napi::Array arr = v.As<Napi::Array>();
    uint32_t n = arr.Length();
    std::vector<iovec>& iov = iovs_[slot];
    iov.resize(n);
    for (uint32_t j = 0; j < n; j++) {
      Napi::Value e = arr.Get(j);
      // One napi_get_typedarray_info per buffer: it type-checks and gives the data pointer.
      napi_typedarray_type type;
      size_t length = 0;
      void* data = nullptr;
      if (napi_get_typedarray_info(env, e, &type, &length, &data, nullptr, nullptr) != napi_ok ||
          type != napi_uint8_array) {
        ThrowType(env, "submit: every buffer must be a Uint8Array");
        return false;
      }
      iov[j].iov_base = data;
      iov[j].iov_len = length;
    }
    return true;
  }

  // Reaps up to `cap` completions into the JS arrays; returns how many.
  uint32_t Reap(uint32_t* outSlots, double* outResults, uint32_t cap) {
    if (useRing_) {
      AioRing* ring = reinterpret_cast<AioRing*>(ctx_);
      unsigned nr = ring->nr;
      unsigned head = ring->head;
      // Acquire pairs with the kernel's barrier between writing an event and advancing tail.
      unsigned tail = __atomic_load_n(&ring->tail, __ATOMIC_ACQUIRE);
      uint32_t n = 0;
      while (head != tail && n < cap) {
        const io_event& ev = ring->events[head];
        outSlots[n] = static_cast<uint32_t>(ev.data);
        outResults[n] = static_cast<double>(ev.res);
        n++;
        head = (head + 1) % nr;
      }
      // Release: the events are read before the kernel may reuse their slots.
      if (n > 0) __atomic_store_n(&ring->head, head, __ATOMIC_RELEASE);
      return n;
    }
    struct timespec zero = {0, 0};
    long rc = syscall(SYS_io_getevents, ctx_, 0L, static_cast<long>(cap), events_.data(), &zero);
    if (rc <= 0) return 0;
    for (long i = 0; i < rc; i++) {
      outSlots[i] = static_cast<uint32_t>(events_[i].data);
      outResults[i] = static_cast<double>(events_[i].res);
    }
    return static_cast<uint32_t>(rc);
  }

  static void OnPoll(uv_poll_t* handle, int status, int events) {
    auto* self = static_cast<AioContext*>(handle->data);
    if (!self->open_) return;
    uint64_t count;
    // Clear the eventfd before reaping: a completion landing after the reap signals again.
    ssize_t unused = read(self->efd_, &count, sizeof count);
    (void)unused;
    self->Drain();
    if (self->open_) self->spinner_.Update();
  }

  // setSpin(us, maxInflight): busy-wait up to `us` for a completion while 1..maxInflight are in flight.
  Napi::Value SetSpin(const Napi::CallbackInfo& info) {
    if (info.Length() < 2 || !info[0].IsNumber() || !info[1].IsNumber()) {
      ThrowType(info.Env(), "setSpin(us: number, maxInflight: number)");
      return info.Env().Undefined();
    }
    double us = info[0].As<Napi::Number>().DoubleValue();
    // Spinning needs the user-space ring; io_getevents would be a syscall per probe.
    spinner_.policy.Configure(useRing_ && us > 0 ? static_cast<uint64_t>(us * 1000) : 0, info[1].As<Napi::Number>().Uint32Value());
    if (open_) spinner_.Update();
    return info.Env().Undefined();
  }

  bool RingPending() const {
    const AioRing* ring = reinterpret_cast<const AioRing*>(ctx_);
    return ring->head != __atomic_load_n(&ring->tail, __ATOMIC_ACQUIRE);
  }

  // IdleSpinner's owner interface (spin.h).
  friend class blockwork::IdleSpinner<AioContext>;
  unsigned SpinInflight() const { return inflight_; }
  bool SpinAlive() const { return open_ && !teardownPending_; }
  bool SpinPending() const { return RingPending(); }
  void SpinDeliver() { Drain(); }
  void SpinClearSignal() {
    uint64_t v;
    ssize_t unused = read(efd_, &v, sizeof v);
    (void)unused;
  }

  // Reaps and calls back per batch until the ring is empty.
  void Drain() {
    Napi::Env env = Env();
    Napi::HandleScope scope(env);
    reaping_ = true;
    for (;;) {
      uint32_t n = Reap(outSlots_, outResults_, outCap_);
      if (n == 0) break;
      inflight_ -= n;
      spinner_.CompletionSeen();
      if (inflight_ == 0) uv_unref(reinterpret_cast<uv_handle_t*>(poll_));
      onComplete_.MakeCallback(Value(), {Napi::Number::New(env, n)}, *asyncCtx_);
      if (env.IsExceptionPending()) {
        // A throwing completion handler becomes an uncaughtException, as for any other callback.
        napi_fatal_exception(env, env.GetAndClearPendingException().Value());
        break;
      }
      if (!open_ || teardownPending_) break;
    }
    reaping_ = false;
    if (teardownPending_) Teardown();
  }

  // destroy(): io_destroy (the kernel waits for in-flight I/O), close the eventfd, stop the poll.
  Napi::Value Destroy(const Napi::CallbackInfo& info) {
    // Called from inside a completion callback, the ring is still being walked: defer the unmap.
    if (reaping_) teardownPending_ = true;
    else Teardown();
    return info.Env().Undefined();
  }

  void Teardown() {
    if (!open_) return;
    open_ = false;
    teardownPending_ = false;
    uv_poll_stop(poll_);
    uv_close(reinterpret_cast<uv_handle_t*>(poll_), [](uv_handle_t* h) { delete reinterpret_cast<uv_poll_t*>(h); });
    poll_ = nullptr;
    spinner_.Close();
    syscall(SYS_io_destroy, ctx_);
    close(efd_);
    efd_ = -1;
    inflight_ = 0;
  }

  Napi::Value Inflight(const Napi::CallbackInfo& info) { return Napi::Number::New(info.Env(), inflight_); }
  Napi::Value UsesRing(const Napi::CallbackInfo& info) { return Napi::Boolean::New(info.Env(), useRing_); }
  Napi::Value SpinStats(const Napi::CallbackInfo& info) {
    Napi::Object o = Napi::Object::New(info.Env());
    o.Set("hits", Napi::Number::New(info.Env(), static_cast<double>(spinner_.policy.hits_total)));
    o.Set("misses", Napi::Number::New(info.Env(), static_cast<double>(spinner_.policy.misses_total)));
    o.Set("contended", Napi::Number::New(info.Env(), static_cast<double>(spinner_.policy.contended_total)));
    return o;
  }

  aio_context_t ctx_ = 0;
  int efd_ = -1;
  uv_poll_t* poll_ = nullptr;
  blockwork::IdleSpinner<AioContext> spinner_;
  uint32_t depth_ = 0;
  uint32_t inflight_ = 0;
  bool open_ = false;
  bool useRing_ = false;
  bool reaping_ = false;
  bool teardownPending_ = false;
  std::vector<iocb> iocbs_;
  std::vector<iocb*> ptrs_;
  std::vector<std::vector<iovec>> iovs_;
  std::vector<io_event> events_;
  Napi::Reference<Napi::Uint8Array> subOps_;
  Napi::Reference<Napi::Int32Array> subFds_;
  Napi::Reference<Napi::Float64Array> subOffsets_;
  Napi::Reference<Napi::Uint32Array> subSlots_;
  Napi::Reference<Napi::Uint32Array> compSlots_;
  Napi::Reference<Napi::Float64Array> compResults_;
  uint8_t* ops_ = nullptr;
  int32_t* fds_ = nullptr;
  double* offsets_ = nullptr;
  uint32_t* slots_ = nullptr;
  uint32_t* outSlots_ = nullptr;
  double* outResults_ = nullptr;
  uint32_t outCap_ = 0;
  Napi::FunctionReference onComplete_;
  Napi::AsyncContext* asyncCtx_ = nullptr;
};

}  // namespace

Napi::Object InitAioContext(Napi::Env env, Napi::Object exports) {
  exports.Set("AioContext", AioContext::Define(env));
  return exports;
}

}  // namespace blockwork_aio
