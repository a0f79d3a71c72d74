// Raw io_uring: setup, the three mmaps, SQ/CQ access. No liburing, kernel headers only.
#pragma once
#include <linux/io_uring.h>
#include <cstddef>
#include <cstdint>

namespace blockwork {

struct Ring {
  int fd = -1;
  unsigned sq_entries = 0, cq_entries = 0;
  // Kernel-shared ring indices; head/tail are touched with acquire/release atomics only.
  unsigned *sq_head = nullptr, *sq_tail = nullptr, *sq_mask = nullptr, *sq_array = nullptr;
  unsigned *cq_head = nullptr, *cq_tail = nullptr, *cq_mask = nullptr;
  io_uring_sqe* sqes = nullptr;
  io_uring_cqe* cqes = nullptr;
  void* sq_ptr = nullptr; size_t sq_len = 0;
  void* cq_ptr = nullptr; size_t cq_len = 0;  // cq_ptr == sq_ptr under IORING_FEAT_SINGLE_MMAP
  size_t sqes_len = 0;
  unsigned* sq_flags = nullptr;  // IORING_SQ_TASKRUN lives here (TASKRUN_FLAG rings)
  unsigned local_tail = 0;   // SQEs filled by us, published with a release store
  unsigned unsubmitted = 0;  // published but not yet consumed by io_uring_enter
  unsigned setup_flags = 0;  // flags io_uring_setup accepted
};

// Setup modes, best first. kDefer: SINGLE_ISSUER | DEFER_TASKRUN | TASKRUN_FLAG (kernel 6.1+):
// completions wait as task work until we enter with GETEVENTS, the eventfd fires from the IRQ and
// IORING_SQ_TASKRUN says work is waiting. kPlain: no flags (completion task work interrupts us).
enum RingMode { kDefer = 0, kPlain = 1 };

// Sets the ring up; returns 0 or -errno, with *syscall naming the call that failed.
// Tries the modes from `best` down to kPlain.
int RingSetup(Ring* r, unsigned entries, RingMode best, const char** syscall);
bool RingDeferred(const Ring* r);
// CQEs ready, or (deferred rings) task work waiting for a GETEVENTS enter. No syscall.
bool RingWorkPending(const Ring* r);
// Deferred task work is waiting (IORING_SQ_TASKRUN).
bool RingTaskrunPending(const Ring* r);
// Submits anything unsubmitted and, on deferred rings, runs waiting task work so its CQEs post.
int RingGetEvents(Ring* r);
// Unmaps and closes; safe on a partly set-up ring.
void RingTeardown(Ring* r);
// Free SQ slots (entries minus those the kernel has not consumed yet).
unsigned RingSqSpace(const Ring* r);
// Next SQE to fill (caller checked space); zeroed.
io_uring_sqe* RingNextSqe(Ring* r);
// Publishes filled SQEs and calls io_uring_enter for everything unsubmitted.
// Returns the number consumed by the kernel, or -errno.
int RingSubmit(Ring* r);
// Drops SQEs filled since the last publish-and-submit (used when enter fails hard).
void RingRewind(Ring* r, unsigned n);
int RegisterEventfd(Ring* r, int efd);

}  // namespace blockwork
