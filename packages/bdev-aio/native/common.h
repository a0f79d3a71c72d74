// Shared helpers for the aio addon: failed syscalls reach JS as {errno, syscall}, never as text alone.
#pragma once
#include <napi.h>

namespace blockwork_aio {

// A plain object {errno, syscall} returned (not thrown) by control-plane calls, as core's lockFile does.
inline Napi::Object Failure(Napi::Env env, int err, const char* syscall) {
  Napi::Object o = Napi::Object::New(env);
  o.Set("errno", Napi::Number::New(env, err));
  o.Set("syscall", Napi::String::New(env, syscall));
  return o;
}

// An Error carrying errno and syscall, for the few places that must throw (constructors).
inline void ThrowSyscall(Napi::Env env, int err, const char* syscall) {
  Napi::Error e = Napi::Error::New(env, std::string(syscall) + " failed");
  e.Set("errno", Napi::Number::New(env, err));
  e.Set("syscall", Napi::String::New(env, syscall));
  e.ThrowAsJavaScriptException();
}

inline void ThrowType(Napi::Env env, const char* usage) {
  Napi::TypeError::New(env, usage).ThrowAsJavaScriptException();
}

Napi::Object InitAioContext(Napi::Env env, Napi::Object exports);
Napi::Object InitFileOps(Napi::Env env, Napi::Object exports);

}  // namespace blockwork_aio
