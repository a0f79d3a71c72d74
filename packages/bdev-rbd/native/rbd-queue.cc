// RbdQueue: one channel's I/O path to an open image. submit() takes a whole batch per call and
// starts each I/O with librbd's aio API. librbd completes on its own threads: the callback pushes
// (slot, result) to a mutex-protected vector and pokes ONE uv_async; the loop side drains the
// vector and calls JS once per batch (napi_make_callback), never once per completion.
#include <uv.h>
#include <cerrno>
#include <climits>
#include <mutex>
#include <vector>
#include "handles.h"

namespace blockwork {
namespace {

// Batch descriptor layout shared with src/native.ts: six doubles per I/O.
enum Op { kRead = 0, kWrite = 1, kFlush = 2, kDiscard = 3, kWriteZeroes = 4 };
constexpr uint32_t kStride = 6;

class RbdQueue;
struct SlotCtx {
  RbdQueue* q;
  uint32_t slot;
};
struct Done {
  uint32_t slot;
  int32_t res;
};

class RbdQueue : public Napi::ObjectWrap<RbdQueue> {
 public:
  static Napi::Function Define(Napi::Env env) {
    return DefineClass(env, "RbdQueue", {
      InstanceMethod<&RbdQueue::Submit>("submit"),
      InstanceMethod<&RbdQueue::Close>("close"),
      InstanceAccessor<&RbdQueue::Inflight>("inflight"),
      InstanceAccessor<&RbdQueue::Slots>("slots"),
    });
  }

  // new RbdQueue(image, slots, ids: Uint32Array, results: Int32Array, onComplete(n))
  explicit RbdQueue(const Napi::CallbackInfo& info) : Napi::ObjectWrap<RbdQueue>(info), env_(info.Env()) {
    Napi::Env env = info.Env();
    if (info.Length() < 5 || !info[1].IsNumber() || !info[2].IsTypedArray() || !info[3].IsTypedArray() || !info[4].IsFunction() ||
        info[2].As<Napi::TypedArray>().TypedArrayType() != napi_uint32_array ||
        info[3].As<Napi::TypedArray>().TypedArrayType() != napi_int32_array ||
        info[2].As<Napi::TypedArray>().ElementLength() != info[3].As<Napi::TypedArray>().ElementLength() ||
        info[2].As<Napi::TypedArray>().ElementLength() == 0 || info[1].As<Napi::Number>().Int64Value() < 1) {
      Napi::TypeError::New(env, "RbdQueue(image, slots: number >= 1, ids: Uint32Array, results: Int32Array (same non-zero length), "
                                "onComplete: (n: number) => void)").ThrowAsJavaScriptException();
      return;
    }
    img_ = blockwork::Unwrap<ImageHandle>(env, info[0], kImageTag, "image");
    if (img_ == nullptr || !RequireLib(env)) return;
    img_ref_ = Napi::Persistent(info[0].As<Napi::External<ImageHandle>>());
    uint32_t slots = info[1].As<Napi::Number>().Uint32Value();
    Napi::Uint32Array ids = info[2].As<Napi::Uint32Array>();
    Napi::Int32Array res = info[3].As<Napi::Int32Array>();
    ids_ = ids.Data();
    res_ = res.Data();
    cap_ = ids.ElementLength();
    ids_ref_ = Napi::Persistent(ids);
    res_ref_ = Napi::Persistent(res);
    cb_ = Napi::Persistent(info[4].As<Napi::Function>());
    ctx_.resize(slots);
    iovs_.resize(slots);
    for (uint32_t i = 0; i < slots; i++) ctx_[i] = SlotCtx{this, i};
    uv_loop_t* loop = nullptr;
    napi_get_uv_event_loop(env, &loop);
    async_ = new uv_async_t;
    uv_async_init(loop, async_, OnAsync);
    async_->data = this;
    // An idle queue must not keep the process alive; Submit refs the handle while I/O is in flight.
    uv_unref(reinterpret_cast<uv_handle_t*>(async_));
    napi_async_init(env, Napi::Object::New(env), Napi::String::New(env, "blockwork:rbd"), &async_ctx_);
  }

  ~RbdQueue() override { Shutdown(); }

  // Called on a librbd thread (or the JS thread for a synchronous failure).
  void Post(uint32_t slot, ssize_t r) {
    std::lock_guard<std::mutex> g(mu_);
    done_.push_back(Done{slot, r < 0 ? static_cast<int32_t>(r < INT_MIN ? -EIO : r) : 0});
    // Sent under the lock: once the loop has taken this entry, no librbd thread touches async_ or
    // this queue again, so close() after the last completion is safe.
    uv_async_send(async_);
  }

 private:
  static void OnAio(rbd_completion_t c, void* arg) {
    auto* s = static_cast<SlotCtx*>(arg);
    ssize_t r = Rbd()->rbd_aio_get_return_value(c);
    Rbd()->rbd_aio_release(c);
    s->q->Post(s->slot, r);
  }

  Napi::Value Inflight(const Napi::CallbackInfo& info) { return Napi::Number::New(info.Env(), inflight_); }
  Napi::Value Slots(const Napi::CallbackInfo& info) { return Napi::Number::New(info.Env(), static_cast<double>(ctx_.size())); }

  // submit(count, desc: Float64Array, bufs: Uint8Array[]) -> count. Each entry is started with its
  // librbd call; one that librbd refuses synchronously completes through the queue with its errno.
  Napi::Value Submit(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (info.Length() < 3 || !info[0].IsNumber() || !info[1].IsTypedArray() || !info[2].IsArray() ||
        info[1].As<Napi::TypedArray>().TypedArrayType() != napi_float64_array) {
      Napi::TypeError::New(env, "submit(count: number, desc: Float64Array, bufs: Uint8Array[])").ThrowAsJavaScriptException();
      return env.Undefined();
    }
    if (async_ == nullptr) return SyscallError(env, EBADF, "rbd_aio_submit", "queue closed").ThrowAsJavaScriptException(), env.Undefined();
    Napi::Float64Array descArr = info[1].As<Napi::Float64Array>();
    uint32_t count = info[0].As<Napi::Number>().Uint32Value();
    if (count > descArr.ElementLength() / kStride) {
      Napi::TypeError::New(env, "submit: count exceeds the descriptor array").ThrowAsJavaScriptException();
      return env.Undefined();
    }
    if (!Collect(env, descArr.Data(), count, info[2].As<Napi::Array>())) return env.Undefined();
    const double* d = descArr.Data();
    for (uint32_t i = 0; i < count; i++, d += kStride) Start(d);
    inflight_ += count;
    UpdateRef();
    return Napi::Number::New(env, count);
  }

  // Validates every entry and gathers buffers into scratch_ before any I/O starts.
  bool Collect(Napi::Env env, const double* d, uint32_t n, Napi::Array bufs) {
    scratch_.clear();
    uint32_t nbufs = bufs.Length();
    for (uint32_t i = 0; i < n; i++, d += kStride) {
      double op = d[0], slot = d[1], off = d[2], len = d[3], first = d[4], cnt = d[5];
      bool rw = op == kRead || op == kWrite;
      if (!(op >= kRead && op <= kWriteZeroes) || !(slot >= 0 && slot < ctx_.size()) || !(off >= 0) || !(len >= 0) ||
          (rw && !(cnt >= 1 && first >= 0 && first + cnt <= nbufs && first == scratch_.size()))) {
        Napi::TypeError::New(env, "submit: malformed descriptor entry").ThrowAsJavaScriptException();
        return false;
      }
      for (uint32_t k = 0; rw && k < static_cast<uint32_t>(cnt); k++) {
        Napi::Value v = bufs[static_cast<uint32_t>(first) + k];
        if (!v.IsTypedArray() || v.As<Napi::TypedArray>().TypedArrayType() != napi_uint8_array) {
          Napi::TypeError::New(env, "submit: bufs must hold Uint8Arrays").ThrowAsJavaScriptException();
          return false;
        }
        Napi::Uint8Array u = v.As<Napi::Uint8Array>();
        scratch_.push_back(iovec{u.Data(), u.ByteLength()});
      }
    }
    return true;
  }

  void Start(const double* d) {
    const RbdLib* l = Rbd();
    unsigned op = static_cast<unsigned>(d[0]);
    uint32_t slot = static_cast<uint32_t>(d[1]);
    uint64_t off = static_cast<uint64_t>(d[2]);
    uint64_t len = static_cast<uint64_t>(d[3]);
    if (img_->h == nullptr) return Post(slot, -ENODEV);
    rbd_completion_t c = nullptr;
    int rc = l->rbd_aio_create_completion(&ctx_[slot], OnAio, &c);
    if (rc < 0) return Post(slot, rc);
    switch (op) {
      case kRead:
      case kWrite: {
        // librbd keeps a pointer to the iovec array (ReadResult), so it lives in the slot until completion.
        std::vector<iovec>& v = iovs_[slot];
        size_t first = static_cast<size_t>(d[4]), cnt = static_cast<size_t>(d[5]);
        v.assign(scratch_.begin() + first, scratch_.begin() + first + cnt);
        rc = op == kRead ? l->rbd_aio_readv(img_->h, v.data(), static_cast<int>(cnt), off, c)
                         : l->rbd_aio_writev(img_->h, v.data(), static_cast<int>(cnt), off, c);
        break;
      }
      case kFlush:
        rc = l->rbd_aio_flush(img_->h, c);
        break;
      case kDiscard:
        rc = l->rbd_aio_discard(img_->h, off, len, c);
        break;
      default:
        rc = l->rbd_aio_write_zeroes != nullptr ? l->rbd_aio_write_zeroes(img_->h, off, static_cast<size_t>(len), c, 0, 0)
                                                : l->rbd_aio_discard(img_->h, off, len, c);
    }
    if (rc < 0) {
      l->rbd_aio_release(c);
      Post(slot, rc);
    }
  }

  static void OnAsync(uv_async_t* h) {
    auto* self = static_cast<RbdQueue*>(h->data);
    if (self != nullptr) self->Drain();
  }

  void Drain() {
    Napi::HandleScope scope(env_);
    {
      std::lock_guard<std::mutex> g(mu_);
      work_.swap(done_);
    }
    size_t i = 0;
    while (i < work_.size() && async_ != nullptr) {
      size_t n = 0;
      for (; i < work_.size() && n < cap_; i++, n++) {
        ids_[n] = work_[i].slot;
        res_[n] = work_[i].res;
      }
      inflight_ -= static_cast<uint32_t>(n);
      UpdateRef();
      napi_value argv = Napi::Number::New(env_, static_cast<double>(n));
      napi_value global;
      napi_get_global(env_, &global);
      napi_status st = napi_make_callback(env_, async_ctx_, global, cb_.Value(), 1, &argv, nullptr);
      if (st == napi_pending_exception) {
        napi_value err;
        napi_get_and_clear_last_exception(env_, &err);
        napi_fatal_exception(env_, err);
        break;
      }
    }
    work_.clear();
  }

  void UpdateRef() {
    if (async_ == nullptr) return;
    bool want = inflight_ > 0;
    if (want == refd_) return;
    refd_ = want;
    if (want) uv_ref(reinterpret_cast<uv_handle_t*>(async_));
    else uv_unref(reinterpret_cast<uv_handle_t*>(async_));
  }

  // close(): releases the wakeup handle. Refused (EBUSY) while I/O is in flight, because librbd
  // would call back into a freed queue.
  Napi::Value Close(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (inflight_ > 0) return SyscallError(env, EBUSY, "rbd_queue_close", "I/O in flight").ThrowAsJavaScriptException(), env.Undefined();
    Shutdown();
    return env.Undefined();
  }

  void Shutdown() {
    // Leaking is the only safe choice if librbd may still call back (GC of an un-closed busy queue).
    if (inflight_ > 0) return;
    if (async_ != nullptr) {
      async_->data = nullptr;
      uv_close(reinterpret_cast<uv_handle_t*>(async_), [](uv_handle_t* h) { delete reinterpret_cast<uv_async_t*>(h); });
      async_ = nullptr;
    }
    if (async_ctx_ != nullptr) napi_async_destroy(env_, async_ctx_);
    async_ctx_ = nullptr;
  }

  napi_env env_;
  ImageHandle* img_ = nullptr;
  Napi::Reference<Napi::External<ImageHandle>> img_ref_;
  uv_async_t* async_ = nullptr;
  napi_async_context async_ctx_ = nullptr;
  Napi::FunctionReference cb_;
  Napi::Reference<Napi::Uint32Array> ids_ref_;
  Napi::Reference<Napi::Int32Array> res_ref_;
  uint32_t* ids_ = nullptr;
  int32_t* res_ = nullptr;
  size_t cap_ = 0;
  uint32_t inflight_ = 0;
  bool refd_ = false;
  std::mutex mu_;
  std::vector<Done> done_;
  std::vector<Done> work_;
  std::vector<SlotCtx> ctx_;
  std::vector<std::vector<iovec>> iovs_;
  std::vector<iovec> scratch_;
};

}  // namespace

Napi::Function DefineRbdQueue(Napi::Env env) { return RbdQueue::Define(env); }

}  // namespace blockwork
