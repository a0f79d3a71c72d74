// Control-plane calls into librados/librbd. Every one that may wait on the cluster (connect,
// ioctx lookup, open, resize, close, shutdown) runs on libuv's thread pool and settles a Promise,
// so a slow or dead cluster never blocks the event loop; the configured rados timeouts bound them.
#include <cerrno>
#include <functional>
#include <utility>
#include <vector>
#include "handles.h"

namespace blockwork {

const napi_type_tag kClusterTag = {0x6a1b2c3d4e5f6071ULL, 0x8192a3b4c5d6e7f8ULL};
const napi_type_tag kIoctxTag = {0x6a1b2c3d4e5f6072ULL, 0x8192a3b4c5d6e7f8ULL};
const napi_type_tag kImageTag = {0x6a1b2c3d4e5f6073ULL, 0x8192a3b4c5d6e7f8ULL};

Napi::Error SyscallError(Napi::Env env, int err, const std::string& call, const std::string& detail) {
  Napi::Error e = Napi::Error::New(env, call + (detail.empty() ? "" : " (" + detail + ")") + " failed: errno " + std::to_string(err));
  e.Set("errno", Napi::Number::New(env, err));
  e.Set("syscall", Napi::String::New(env, call));
  if (!detail.empty()) e.Set("detail", Napi::String::New(env, detail));
  return e;
}

bool RequireLib(Napi::Env env) {
  if (Rbd() != nullptr) return true;
  Napi::Error::New(env, "librbd is not loaded").ThrowAsJavaScriptException();
  return false;
}

namespace {

// Runs `work` on the thread pool. work returns 0 or -errno and names the failed call in `call`
// (and optionally the option or path in `detail`); `ok` builds the resolved value on the JS thread.
class Job : public Napi::AsyncWorker {
 public:
  using Work = std::function<int(std::string* call, std::string* detail)>;
  using Ok = std::function<Napi::Value(Napi::Env)>;

  static Napi::Value Run(Napi::Env env, Work work, Ok ok) {
    auto* job = new Job(env, std::move(work), std::move(ok));
    Napi::Promise p = job->deferred_.Promise();
    job->Queue();
    return p;
  }

 private:
  Job(Napi::Env env, Work work, Ok ok)
      : Napi::AsyncWorker(env, "blockwork:rbd"), deferred_(Napi::Promise::Deferred::New(env)), work_(std::move(work)), ok_(std::move(ok)) {}

  void Execute() override { rc_ = work_(&call_, &detail_); }

  void OnOK() override {
    Napi::Env env = Env();
    if (rc_ < 0) deferred_.Reject(SyscallError(env, -rc_, call_, detail_).Value());
    else deferred_.Resolve(ok_ ? ok_(env) : env.Undefined());
  }

  Napi::Promise::Deferred deferred_;
  Work work_;
  Ok ok_;
  int rc_ = 0;
  std::string call_;
  std::string detail_;
};

// A handle already closed or shut down: EBADF, like a closed fd.
Napi::Value Closed(Napi::Env env, const char* call) {
  SyscallError(env, EBADF, call, "handle already closed").ThrowAsJavaScriptException();
  return env.Undefined();
}

}  // namespace

// connect(user: string, confFile: string | null, readDefault: boolean, options: [string, string][]) -> Promise<cluster>
Napi::Value Connect(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 4 || !info[0].IsString() || !(info[1].IsString() || info[1].IsNull()) || !info[2].IsBoolean() || !info[3].IsArray()) {
    Napi::TypeError::New(env, "connect(user: string, confFile: string | null, readDefault: boolean, options: [string, string][])")
        .ThrowAsJavaScriptException();
    return env.Undefined();
  }
  std::vector<std::pair<std::string, std::string>> opts;
  Napi::Array arr = info[3].As<Napi::Array>();
  for (uint32_t i = 0; i < arr.Length(); i++) {
    Napi::Value e = arr[i];
    if (!e.IsArray() || e.As<Napi::Array>().Length() != 2 || !e.As<Napi::Array>().Get(0u).IsString() || !e.As<Napi::Array>().Get(1u).IsString()) {
      Napi::TypeError::New(env, "connect: options must be [string, string] pairs").ThrowAsJavaScriptException();
      return env.Undefined();
    }
    opts.emplace_back(e.As<Napi::Array>().Get(0u).As<Napi::String>().Utf8Value(), e.As<Napi::Array>().Get(1u).As<Napi::String>().Utf8Value());
  }
  if (!RequireLib(env)) return env.Undefined();
  std::string name = "client." + info[0].As<Napi::String>().Utf8Value();
  bool hasFile = info[1].IsString();
  std::string file = hasFile ? info[1].As<Napi::String>().Utf8Value() : "";
  bool readDefault = info[2].As<Napi::Boolean>().Value();
  auto* handle = new ClusterHandle();
  return Job::Run(env, [=](std::string* call, std::string* detail) {
    const RbdLib* l = Rbd();
    rados_t h = nullptr;
    int rc = l->rados_create2(&h, "ceph", name.c_str(), 0);
    if (rc < 0) { *call = "rados_create2"; *detail = name; return rc; }
    if (hasFile) {
      rc = l->rados_conf_read_file(h, file.c_str());
      if (rc < 0) { *call = "rados_conf_read_file"; *detail = file; }
    } else if (readDefault) {
      // $CEPH_CONF or /etc/ceph/ceph.conf when present; their absence is not an error (options may say it all).
      l->rados_conf_read_file(h, nullptr);
    }
    for (size_t i = 0; rc >= 0 && i < opts.size(); i++) {
      rc = l->rados_conf_set(h, opts[i].first.c_str(), opts[i].second.c_str());
      if (rc < 0) { *call = "rados_conf_set"; *detail = opts[i].first; }
    }
    if (rc >= 0) {
      rc = l->rados_connect(h);
      if (rc < 0) {
        // The effective mon_host goes back with the error: JS probes it to tell "no monitor
        // answered" from "a monitor answered but cephx never completed" (librados reports both as ETIMEDOUT).
        *call = "rados_connect";
        char buf[1024] = {0};
        if (l->rados_conf_get(h, "mon_host", buf, sizeof buf - 1) == 0) *detail = buf;
      }
    }
    if (rc < 0) { l->rados_shutdown(h); delete handle; return rc; }
    handle->h = h;
    return 0;
  }, [handle](Napi::Env env) { return Wrap(env, handle, kClusterTag); });
}

// ioctxCreate(cluster, pool: string) -> Promise<ioctx>
Napi::Value IoctxCreate(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 2 || !info[1].IsString()) {
    Napi::TypeError::New(env, "ioctxCreate(cluster, pool: string)").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  auto* c = Unwrap<ClusterHandle>(env, info[0], kClusterTag, "cluster");
  if (c == nullptr || !RequireLib(env)) return env.Undefined();
  if (c->h == nullptr) return Closed(env, "rados_ioctx_create");
  std::string pool = info[1].As<Napi::String>().Utf8Value();
  auto* handle = new IoctxHandle();
  rados_t cluster = c->h;
  return Job::Run(env, [=](std::string* call, std::string* detail) {
    int rc = Rbd()->rados_ioctx_create(cluster, pool.c_str(), &handle->h);
    if (rc < 0) { *call = "rados_ioctx_create"; *detail = pool; delete handle; }
    return rc;
  }, [handle](Napi::Env env) { return Wrap(env, handle, kIoctxTag); });
}

// ioctxDestroy(ioctx): no-op when already destroyed. Quick and local, so synchronous.
Napi::Value IoctxDestroy(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto* io = Unwrap<IoctxHandle>(env, info[0], kIoctxTag, "ioctx");
  if (io == nullptr || !RequireLib(env)) return env.Undefined();
  if (io->h != nullptr) Rbd()->rados_ioctx_destroy(io->h);
  io->h = nullptr;
  return env.Undefined();
}

// shutdown(cluster) -> Promise<void>: every ioctx and image of the cluster must be closed first.
Napi::Value Shutdown(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto* c = Unwrap<ClusterHandle>(env, info[0], kClusterTag, "cluster");
  if (c == nullptr || !RequireLib(env)) return env.Undefined();
  rados_t h = c->h;
  c->h = nullptr;
  return Job::Run(env, [h](std::string*, std::string*) {
    if (h != nullptr) Rbd()->rados_shutdown(h);
    return 0;
  }, nullptr);
}

// imageOpen(ioctx, name: string) -> Promise<image>
Napi::Value ImageOpen(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 2 || !info[1].IsString()) {
    Napi::TypeError::New(env, "imageOpen(ioctx, name: string)").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  auto* io = Unwrap<IoctxHandle>(env, info[0], kIoctxTag, "ioctx");
  if (io == nullptr || !RequireLib(env)) return env.Undefined();
  if (io->h == nullptr) return Closed(env, "rbd_open");
  std::string name = info[1].As<Napi::String>().Utf8Value();
  rados_ioctx_t ioh = io->h;
  auto* handle = new ImageHandle();
  return Job::Run(env, [=](std::string* call, std::string* detail) {
    int rc = Rbd()->rbd_open(ioh, name.c_str(), &handle->h, nullptr);
    if (rc < 0) { *call = "rbd_open"; *detail = name; delete handle; }
    return rc;
  }, [handle](Napi::Env env) { return Wrap(env, handle, kImageTag); });
}

// imageSize(image) -> bytes. rbd_get_size reads librbd's cached header: local, synchronous.
Napi::Value ImageSize(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto* img = Unwrap<ImageHandle>(env, info[0], kImageTag, "image");
  if (img == nullptr || !RequireLib(env)) return env.Undefined();
  if (img->h == nullptr) return Closed(env, "rbd_get_size");
  uint64_t size = 0;
  int rc = Rbd()->rbd_get_size(img->h, &size);
  if (rc < 0) {
    SyscallError(env, -rc, "rbd_get_size").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  return Napi::Number::New(env, static_cast<double>(size));
}

// imageResize(image, bytes: number) -> Promise<void>
Napi::Value ImageResize(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 2 || !info[1].IsNumber() || info[1].As<Napi::Number>().DoubleValue() < 0) {
    Napi::TypeError::New(env, "imageResize(image, bytes: number)").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  auto* img = Unwrap<ImageHandle>(env, info[0], kImageTag, "image");
  if (img == nullptr || !RequireLib(env)) return env.Undefined();
  if (img->h == nullptr) return Closed(env, "rbd_resize");
  rbd_image_t h = img->h;
  uint64_t bytes = static_cast<uint64_t>(info[1].As<Napi::Number>().DoubleValue());
  return Job::Run(env, [=](std::string* call, std::string*) {
    int rc = Rbd()->rbd_resize(h, bytes);
    if (rc < 0) *call = "rbd_resize";
    return rc;
  }, nullptr);
}

// imageClose(image) -> Promise<void>: every RbdQueue on it must have nothing in flight.
Napi::Value ImageClose(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto* img = Unwrap<ImageHandle>(env, info[0], kImageTag, "image");
  if (img == nullptr || !RequireLib(env)) return env.Undefined();
  rbd_image_t h = img->h;
  img->h = nullptr;
  return Job::Run(env, [h](std::string* call, std::string*) {
    int rc = h == nullptr ? 0 : Rbd()->rbd_close(h);
    if (rc < 0) *call = "rbd_close";
    return rc;
  }, nullptr);
}

}  // namespace blockwork
