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
  unsigned local_tail = 0;   // SQEs filled by us, published with a release store
  unsigned unsubmitted = 0;  // published but not yet consumed by io_uring_enter
};

// Sets the ring up; returns 0 or -errno, with *syscall naming the call that failed.
int RingSetup(Ring* r, unsigned entries, const char** syscall);
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
