// Entry point: load(), library info and the control and I/O functions of the other files.
#include "handles.h"

namespace blockwork {
namespace {

// load(radosPath, rbdPath) -> null on success, else the dlopen/dlsym message.
Napi::Value Load(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 2 || !info[0].IsString() || !info[1].IsString()) {
    Napi::TypeError::New(env, "load(radosPath: string, rbdPath: string)").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  std::string err = LoadRbdLib(info[0].As<Napi::String>().Utf8Value(), info[1].As<Napi::String>().Utf8Value());
  if (err.empty()) return env.Null();
  return Napi::String::New(env, err);
}

// libraryInfo() -> { version: "1.16.0", writeZeroes: boolean }; librbd must be loaded.
Napi::Value LibraryInfo(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!RequireLib(env)) return env.Undefined();
  int major = 0, minor = 0, extra = 0;
  Rbd()->rbd_version(&major, &minor, &extra);
  Napi::Object o = Napi::Object::New(env);
  o.Set("version", std::to_string(major) + "." + std::to_string(minor) + "." + std::to_string(extra));
  o.Set("writeZeroes", Rbd()->rbd_aio_write_zeroes != nullptr);
  return o;
}

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  exports.Set("load", Napi::Function::New(env, Load));
  exports.Set("libraryInfo", Napi::Function::New(env, LibraryInfo));
  exports.Set("connect", Napi::Function::New(env, Connect));
  exports.Set("ioctxCreate", Napi::Function::New(env, IoctxCreate));
  exports.Set("ioctxDestroy", Napi::Function::New(env, IoctxDestroy));
  exports.Set("shutdown", Napi::Function::New(env, Shutdown));
  exports.Set("imageOpen", Napi::Function::New(env, ImageOpen));
  exports.Set("imageSize", Napi::Function::New(env, ImageSize));
  exports.Set("imageResize", Napi::Function::New(env, ImageResize));
  exports.Set("imageClose", Napi::Function::New(env, ImageClose));
  exports.Set("RbdQueue", DefineRbdQueue(env));
  return exports;
}

}  // namespace
}  // namespace blockwork

static Napi::Object InitAll(Napi::Env env, Napi::Object exports) { return blockwork::Init(env, exports); }

NODE_API_MODULE(blockwork_rbd, InitAll)
