// SIGBUS guard for mappings of fds a peer handed us. A front end can shrink its memfd after
// SET_MEM_TABLE (unless it sealed it); touching a page past the new end raises SIGBUS, which would
// kill the daemon and every other VM's disk with it. As Wayland compositors do for wl_shm pools, the
// handler maps anonymous zero pages over the whole mapping so the faulting access completes, marks
// the mapping poisoned and wakes the event loop (uv_async_send is async-signal-safe); JS then resets
// that one connection. A fault outside our mappings goes to the previous handler, or kills the
// process as it would have without us.
#include "common.h"
#include <sys/mman.h>
#include <atomic>
#include <csignal>
#include <cstring>
#include <mutex>

namespace vhu {
namespace {

// A session maps at most 8 memory regions plus its inflight and log regions: room for ~700 sessions.
constexpr size_t kSlots = 8192;
struct Slot {
  std::atomic<uintptr_t> start{0};  // 0: free
  std::atomic<uintptr_t> end{0};
  std::atomic<int> poisoned{0};
};
Slot g_slots[kSlots];
std::mutex g_mu;
struct sigaction g_previous;
bool g_installed = false;
uv_async_t* g_async = nullptr;
napi_ref g_callback = nullptr;
napi_env g_env = nullptr;

// Puts the previous disposition back. A fault re-raises by itself when the faulting instruction
// runs again; a SIGBUS sent with kill() would not, so it is raised again here.
void RestoreAndReturn(const siginfo_t* info) {
  sigaction(SIGBUS, &g_previous, nullptr);
  if (info->si_code <= 0) raise(SIGBUS);
}

void OnSigbus(int sig, siginfo_t* info, void* uctx) {
  uintptr_t addr = reinterpret_cast<uintptr_t>(info->si_addr);
  for (Slot& s : g_slots) {
    if (info->si_code <= 0) break;  // sent by kill(), not a fault on a mapping
    uintptr_t start = s.start.load(std::memory_order_acquire);
    if (start == 0 || addr < start || addr >= s.end.load(std::memory_order_acquire)) continue;
    void* p = mmap(reinterpret_cast<void*>(start), s.end.load(std::memory_order_relaxed) - start, PROT_READ | PROT_WRITE,
                   MAP_FIXED | MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) return RestoreAndReturn(info);
    s.poisoned.store(1, std::memory_order_release);
    if (g_async != nullptr) uv_async_send(g_async);
    return;
  }
  if ((g_previous.sa_flags & SA_SIGINFO) && g_previous.sa_sigaction != nullptr) return g_previous.sa_sigaction(sig, info, uctx);
  if (g_previous.sa_handler != SIG_DFL && g_previous.sa_handler != SIG_IGN) return g_previous.sa_handler(sig);
  // SIG_IGN cannot apply to a fault (it would re-fault forever): fall back to the default action.
  if (g_previous.sa_handler == SIG_IGN) g_previous.sa_handler = SIG_DFL;
  RestoreAndReturn(info);
}

void OnAsync(uv_async_t*) {
  if (g_env == nullptr || g_callback == nullptr) return;
  napi_handle_scope scope;
  napi_open_handle_scope(g_env, &scope);
  napi_value fn;
  if (napi_get_reference_value(g_env, g_callback, &fn) == napi_ok && fn != nullptr) {
    napi_async_context ctx = nullptr;
    napi_value name;
    napi_create_string_utf8(g_env, "vhost-user-sigbus", NAPI_AUTO_LENGTH, &name);
    napi_async_init(g_env, nullptr, name, &ctx);
    CallJs(g_env, ctx, fn, 0, nullptr);
    napi_async_destroy(g_env, ctx);
  }
  napi_close_handle_scope(g_env, scope);
}

Slot* Find(uintptr_t start) {
  for (Slot& s : g_slots)
    if (s.start.load(std::memory_order_relaxed) == start) return &s;
  return nullptr;
}

}  // namespace

bool GuardAdd(void* base, size_t len) {
  std::lock_guard<std::mutex> lock(g_mu);
  if (!g_installed) {
    struct sigaction sa;
    std::memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = OnSigbus;
    sa.sa_flags = SA_SIGINFO | SA_ONSTACK;
    sigemptyset(&sa.sa_mask);
    if (sigaction(SIGBUS, &sa, &g_previous) != 0) return false;
    g_installed = true;
  }
  Slot* s = Find(0);
  if (s == nullptr) return false;
  s->poisoned.store(0, std::memory_order_relaxed);
  s->end.store(reinterpret_cast<uintptr_t>(base) + len, std::memory_order_release);
  s->start.store(reinterpret_cast<uintptr_t>(base), std::memory_order_release);
  return true;
}

void GuardRemove(void* base) {
  std::lock_guard<std::mutex> lock(g_mu);
  Slot* s = Find(reinterpret_cast<uintptr_t>(base));
  if (s != nullptr) s->start.store(0, std::memory_order_release);
}

bool GuardPoisoned(void* base) {
  std::lock_guard<std::mutex> lock(g_mu);
  Slot* s = Find(reinterpret_cast<uintptr_t>(base));
  return s != nullptr && s->poisoned.load(std::memory_order_acquire) != 0;
}

namespace {

// onSigbus(callback): called (on the event loop, once per burst of faults) after a guarded mapping
// was poisoned; the callback asks each region whether it is the one.
Napi::Value OnSigbusJs(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsFunction()) return ThrowType(env, "onSigbus(callback: () => void)");
  if (g_callback != nullptr) napi_delete_reference(env, g_callback);
  napi_create_reference(env, info[0], 1, &g_callback);
  g_env = env;
  if (g_async == nullptr) {
    uv_loop_t* loop = nullptr;
    napi_get_uv_event_loop(env, &loop);
    g_async = new uv_async_t;
    uv_async_init(loop, g_async, OnAsync);
    uv_unref(reinterpret_cast<uv_handle_t*>(g_async));
  }
  return env.Undefined();
}

}  // namespace

void InitGuard(Napi::Env env, Napi::Object exports) {
  exports.Set("onSigbus", Napi::Function::New(env, OnSigbusJs));
}

}  // namespace vhu
