// Bounded, adaptive busy-wait for completions at low queue depth (docs/bdev-aio.md and
// docs/bdev-uring.md, "Completion polling"). Sleeping in epoll costs a wakeup (eventfd, epoll, a
// halted vCPU, libuv) comparable to the device's own latency at QD1; a short spin on the completion
// ring avoids it. The wait adapts to the device: four times the recent average completion wait,
// between 20 us and the configured ceiling; three timeouts in a row, or a pass that lost its CPU to
// other threads, suspend spinning for 100 ms.
#pragma once
#include <uv.h>
#include <time.h>
#include <algorithm>
#include <cstdint>

namespace blockwork {

struct SpinPolicy {
  static constexpr uint64_t kMinNs = 20000;
  uint64_t max_ns = 0;           // ceiling of a single wait; 0 disables spinning
  unsigned max_inflight = 0;     // spin only with 1..max_inflight I/Os in flight
  uint64_t session_ns = 200000;  // longest hold of the loop per idle pass (JS callbacks included)
  uint64_t avg_ns = 0;           // moving average of the wait until a completion showed up
  unsigned misses = 0;           // consecutive waits that timed out
  uint64_t off_until = 0;        // uv_hrtime() before which spinning is suspended
  uint64_t hits_total = 0, misses_total = 0, contended_total = 0;

  // Starts optimistic: the first waits use the whole ceiling.
  void Configure(uint64_t ceiling_ns, unsigned inflight) {
    max_ns = ceiling_ns;
    max_inflight = inflight;
    avg_ns = ceiling_ns / 4;
    misses = 0;
    off_until = 0;
  }
  bool Wanted(unsigned inflight, uint64_t now) const {
    return max_ns > 0 && inflight > 0 && inflight <= max_inflight && now >= off_until;
  }
  // Four times the average wait: covers most of the spread of one device's latency.
  uint64_t Budget() const { return std::clamp<uint64_t>(avg_ns * 4, kMinNs, std::max(max_ns, kMinNs)); }
  void Hit(uint64_t waited) {
    misses = 0;
    hits_total++;
    avg_ns = (avg_ns * 7 + waited) / 8;
  }
  // Spinning only pays when the thread keeps its CPU. If a pass got much less CPU time than wall
  // time, other runnable threads took the core (a loaded machine): a spinning thread then only
  // delays them and itself, so suspend for 100 ms.
  void EndPass(uint64_t wall_ns, uint64_t cpu_ns, uint64_t now) {
    if (wall_ns < 50000 || cpu_ns * 4 >= wall_ns * 3) return;
    contended_total++;
    off_until = now + 100000000;
  }
  // A timeout doubles the budget (up to the ceiling); three in a row mean the device is slower
  // than the ceiling: suspend for 100 ms, then probe again.
  void Miss(uint64_t now) {
    misses_total++;
    avg_ns = std::min(avg_ns * 2 + 1000, max_ns / 4);
    if (++misses < 3) return;
    misses = 0;
    off_until = now + 100000000;
  }
};

inline uint64_t ThreadCpuNs() {
  timespec ts;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1000000000u + static_cast<uint64_t>(ts.tv_nsec);
}

inline void CpuRelax() {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#elif defined(__aarch64__)
  asm volatile("yield");
#endif
}

// Busy-waits until ready() or the deadline (uv_hrtime ns); returns ready().
template <typename F>
bool SpinUntil(F ready, uint64_t deadline) {
  for (unsigned i = 1;; i++) {
    if (ready()) return true;
    if ((i & 15) == 0 && uv_hrtime() >= deadline) return ready();
    CpuRelax();
  }
}

// Runs polling sessions from a uv_idle handle while SpinPolicy wants them. The owner (an addon's
// completion context) provides:
//   unsigned SpinInflight()  I/Os in flight
//   bool SpinAlive()         open, and not tearing down
//   bool SpinPending()       a completion is ready (checked without a system call)
//   void SpinDeliver()       reaps and calls back (may tear the owner down)
//   void SpinClearSignal()   resets the completion eventfd
template <typename Owner>
class IdleSpinner {
 public:
  SpinPolicy policy;

  // The handle does not keep the loop alive; the owner's eventfd poll does while I/O is in flight.
  void Init(uv_loop_t* loop, Owner* owner) {
    owner_ = owner;
    idle_ = new uv_idle_t;
    uv_idle_init(loop, idle_);
    idle_->data = this;
    uv_unref(reinterpret_cast<uv_handle_t*>(idle_));
  }

  // A completion arrived through the eventfd: polling may resume after a timed-out wait.
  void CompletionSeen() { missed_ = false; }

  // Starts or stops the idle handle: it keeps the loop from sleeping (poll timeout 0) while it runs.
  void Update() {
    if (idle_ == nullptr) return;
    bool want = !missed_ && policy.Wanted(owner_->SpinInflight(), uv_hrtime());
    if (want == running_) return;
    running_ = want;
    if (want) uv_idle_start(idle_, OnIdle);
    else uv_idle_stop(idle_);
  }

  void Close() {
    if (idle_ == nullptr) return;
    idle_->data = nullptr;
    uv_idle_stop(idle_);
    uv_close(reinterpret_cast<uv_handle_t*>(idle_), [](uv_handle_t* h) { delete reinterpret_cast<uv_idle_t*>(h); });
    idle_ = nullptr;
    running_ = false;
  }

 private:
  static void OnIdle(uv_idle_t* h) {
    auto* self = static_cast<IdleSpinner*>(h->data);
    if (self != nullptr && self->owner_->SpinAlive()) self->Session();
  }

  // Once per loop turn: busy-waits for completions and delivers them, for at most session_ns.
  void Session() {
    Owner* o = owner_;
    uint64_t now = uv_hrtime();
    const uint64_t start = now, cpu0 = ThreadCpuNs();
    const uint64_t end = now + policy.session_ns;
    bool delivered = false;
    while (o->SpinAlive() && policy.Wanted(o->SpinInflight(), now)) {
      const uint64_t t0 = now;
      if (!SpinUntil([o] { return o->SpinPending(); }, t0 + policy.Budget())) {
        // Timed out: sleep in epoll until the eventfd says the completion is there.
        policy.Miss(uv_hrtime());
        missed_ = true;
        break;
      }
      policy.Hit(uv_hrtime() - t0);
      o->SpinDeliver();
      delivered = true;
      now = uv_hrtime();
      if (now >= end) break;
    }
    if (!o->SpinAlive()) return;
    now = uv_hrtime();
    policy.EndPass(now - start, ThreadCpuNs() - cpu0, now);
    if (delivered) {
      // Each delivered completion also bumped the eventfd; clear it so epoll does not wake for them.
      // A completion landing after the last reap is either seen by this recheck or signals again.
      o->SpinClearSignal();
      if (o->SpinPending()) o->SpinDeliver();
    }
    if (o->SpinAlive()) Update();
  }

  Owner* owner_ = nullptr;
  uv_idle_t* idle_ = nullptr;
  bool running_ = false;
  bool missed_ = false;  // the last wait timed out: wait for the eventfd before polling again
};

}  // namespace blockwork
