// Shared helpers for the vhost-user addon: syscall errors as {errno, syscall}, and calling back
// into JS from a libuv callback.
#pragma once
#include <napi.h>
#include <uv.h>
#include <string>

namespace vhu {

// A failed system call reaches JS as an Error carrying the numeric errno and the call's name.
inline Napi::Value ThrowSyscall(Napi::Env env, int err, const char* syscall) {
  Napi::Error e = Napi::Error::New(env, std::string(syscall) + " failed (errno " + std::to_string(err) + ")");
  e.Set("errno", Napi::Number::New(env, err));
  e.Set("syscall", Napi::String::New(env, syscall));
  e.ThrowAsJavaScriptException();
  return env.Undefined();
}

inline Napi::Value ThrowType(Napi::Env env, const char* msg) {
  Napi::TypeError::New(env, msg).ThrowAsJavaScriptException();
  return env.Undefined();
}

// napi_make_callback needs an object receiver (undefined makes it fail silently) and an async
// context so microtasks queued by the callback run when it returns. A JS exception is rethrown as
// an uncaught exception: swallowing it would hide bugs in message handlers.
inline bool CallJs(napi_env env, napi_async_context ctx, napi_value fn, size_t argc, const napi_value* argv) {
  napi_value global;
  napi_get_global(env, &global);
  napi_status st = napi_make_callback(env, ctx, global, fn, argc, argv, nullptr);
  if (st == napi_pending_exception) {
    napi_value err;
    napi_get_and_clear_last_exception(env, &err);
    napi_fatal_exception(env, err);
    return false;
  }
  return st == napi_ok;
}

// Stops and frees a poll handle; the handle memory is released by libuv's close callback.
inline void ClosePoll(uv_poll_t*& p) {
  if (p == nullptr) return;
  p->data = nullptr;
  uv_poll_stop(p);
  uv_close(reinterpret_cast<uv_handle_t*>(p), [](uv_handle_t* h) { delete reinterpret_cast<uv_poll_t*>(h); });
  p = nullptr;
}

Napi::Function DefineConnection(Napi::Env env);
Napi::Function DefineListener(Napi::Env env);
Napi::Function DefineEventFd(Napi::Env env);
void InitMemory(Napi::Env env, Napi::Object exports);
void InitGuard(Napi::Env env, Napi::Object exports);
// SIGBUS guard over mappings of peers' fds (guard.cc): add after mmap, remove before munmap.
bool GuardAdd(void* base, size_t len);
void GuardRemove(void* base);
bool GuardPoisoned(void* base);
Napi::Value ConnectNonBlocking(const Napi::CallbackInfo& info);

constexpr size_t kHeaderSize = 12;
// Largest payload accepted: the biggest standard message (GET_CONFIG with 256 config bytes, a full
// memory table) is far below this; a larger size field means a broken or hostile peer.
constexpr size_t kMaxPayload = 4096;
constexpr size_t kMaxFds = 8;

}  // namespace vhu
