// Opaque handles handed to JS as type-tagged napi externals, and the helpers shared by the addon.
#pragma once
#include <napi.h>
#include <string>
#include "rbd-lib.h"

namespace blockwork {

struct ClusterHandle { rados_t h = nullptr; };
struct IoctxHandle { rados_ioctx_t h = nullptr; };
struct ImageHandle { rbd_image_t h = nullptr; };

extern const napi_type_tag kClusterTag;
extern const napi_type_tag kIoctxTag;
extern const napi_type_tag kImageTag;

// The handle behind a tagged external, or null (after throwing a TypeError) when v is not one.
template <typename T>
T* Unwrap(Napi::Env env, Napi::Value v, const napi_type_tag& tag, const char* what) {
  bool ok = false;
  if (v.IsExternal()) napi_check_object_type_tag(env, v, &tag, &ok);
  if (!ok) {
    Napi::TypeError::New(env, std::string("expected a ") + what + " handle").ThrowAsJavaScriptException();
    return nullptr;
  }
  return v.As<Napi::External<T>>().Data();
}

template <typename T>
Napi::Value Wrap(Napi::Env env, T* p, const napi_type_tag& tag) {
  // The finalizer frees only the small struct; librados/librbd handles are closed explicitly,
  // because closing them blocks and must not happen on the GC's schedule.
  auto ext = Napi::External<T>::New(env, p, [](Napi::Env, T* q) { delete q; });
  napi_type_tag_object(env, ext, &tag);
  return ext;
}

// An Error with errno (positive) and the failed call's name, as the rest of Blockwork reports them.
Napi::Error SyscallError(Napi::Env env, int err, const std::string& call, const std::string& detail = "");

// Throws (TypeError-free) when librbd is not loaded; returns false then.
bool RequireLib(Napi::Env env);

Napi::Value Connect(const Napi::CallbackInfo& info);
Napi::Value IoctxCreate(const Napi::CallbackInfo& info);
Napi::Value IoctxDestroy(const Napi::CallbackInfo& info);
Napi::Value Shutdown(const Napi::CallbackInfo& info);
Napi::Value ImageOpen(const Napi::CallbackInfo& info);
Napi::Value ImageSize(const Napi::CallbackInfo& info);
Napi::Value ImageResize(const Napi::CallbackInfo& info);
Napi::Value ImageClose(const Napi::CallbackInfo& info);
Napi::Function DefineRbdQueue(Napi::Env env);

}  // namespace blockwork
