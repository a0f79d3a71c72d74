#include "ring.h"

#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <cerrno>
#include <cstring>

namespace blockwork {

static unsigned LoadAcquire(const unsigned* p) { return __atomic_load_n(p, __ATOMIC_ACQUIRE); }
static void StoreRelease(unsigned* p, unsigned v) { __atomic_store_n(p, v, __ATOMIC_RELEASE); }

static const unsigned kModeFlags[] = {
  IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN | IORING_SETUP_TASKRUN_FLAG,
  0,
};

int RingSetup(Ring* r, unsigned entries, RingMode best, const char** syscall) {
  io_uring_params p;
  *syscall = "io_uring_setup";
  int fd = -1;
  for (unsigned m = best; m <= kPlain; m++) {
    std::memset(&p, 0, sizeof p);
    p.flags = kModeFlags[m];
    fd = static_cast<int>(::syscall(__NR_io_uring_setup, entries, &p));
    // EINVAL: an older kernel without these flags; try the next mode.
    if (fd >= 0 || errno != EINVAL) break;
  }
  if (fd < 0) return -errno;
  r->fd = fd;
  r->setup_flags = p.flags;
  r->sq_entries = p.sq_entries;
  r->cq_entries = p.cq_entries;
  r->sq_len = p.sq_off.array + p.sq_entries * sizeof(unsigned);
  r->cq_len = p.cq_off.cqes + p.cq_entries * sizeof(io_uring_cqe);
  bool single = (p.features & IORING_FEAT_SINGLE_MMAP) != 0;
  if (single && r->cq_len > r->sq_len) r->sq_len = r->cq_len;
  *syscall = "mmap";
  r->sq_ptr = mmap(nullptr, r->sq_len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, fd, IORING_OFF_SQ_RING);
  if (r->sq_ptr == MAP_FAILED) { r->sq_ptr = nullptr; return -errno; }
  if (single) {
    r->cq_ptr = r->sq_ptr;
  } else {
    r->cq_ptr = mmap(nullptr, r->cq_len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, fd, IORING_OFF_CQ_RING);
    if (r->cq_ptr == MAP_FAILED) { r->cq_ptr = nullptr; return -errno; }
  }
  r->sqes_len = p.sq_entries * sizeof(io_uring_sqe);
  void* s = mmap(nullptr, r->sqes_len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, fd, IORING_OFF_SQES);
  if (s == MAP_FAILED) return -errno;
  r->sqes = static_cast<io_uring_sqe*>(s);
  char* sq = static_cast<char*>(r->sq_ptr);
  char* cq = static_cast<char*>(r->cq_ptr);
  r->sq_head = reinterpret_cast<unsigned*>(sq + p.sq_off.head);
  r->sq_tail = reinterpret_cast<unsigned*>(sq + p.sq_off.tail);
  r->sq_mask = reinterpret_cast<unsigned*>(sq + p.sq_off.ring_mask);
  r->sq_array = reinterpret_cast<unsigned*>(sq + p.sq_off.array);
  r->sq_flags = reinterpret_cast<unsigned*>(sq + p.sq_off.flags);
  r->cq_head = reinterpret_cast<unsigned*>(cq + p.cq_off.head);
  r->cq_tail = reinterpret_cast<unsigned*>(cq + p.cq_off.tail);
  r->cq_mask = reinterpret_cast<unsigned*>(cq + p.cq_off.ring_mask);
  r->cqes = reinterpret_cast<io_uring_cqe*>(cq + p.cq_off.cqes);
  // Identity map: SQ array slot i always points at SQE i, so filling SQE (tail & mask) is enough.
  for (unsigned i = 0; i < p.sq_entries; i++) r->sq_array[i] = i;
  r->local_tail = *r->sq_tail;
  return 0;
}

void RingTeardown(Ring* r) {
  if (r->sqes) munmap(r->sqes, r->sqes_len);
  if (r->cq_ptr && r->cq_ptr != r->sq_ptr) munmap(r->cq_ptr, r->cq_len);
  if (r->sq_ptr) munmap(r->sq_ptr, r->sq_len);
  if (r->fd >= 0) close(r->fd);
  *r = Ring();
}

unsigned RingSqSpace(const Ring* r) {
  // The kernel advances sq_head as it consumes SQEs; acquire pairs with its release.
  return r->sq_entries - (r->local_tail - LoadAcquire(r->sq_head));
}

io_uring_sqe* RingNextSqe(Ring* r) {
  io_uring_sqe* sqe = &r->sqes[r->local_tail & *r->sq_mask];
  std::memset(sqe, 0, sizeof *sqe);
  r->local_tail++;
  r->unsubmitted++;
  return sqe;
}

void RingRewind(Ring* r, unsigned n) {
  // Only valid right after a failed enter: the kernel has not consumed these SQEs, and it reads the
  // tail only inside io_uring_enter (no SQPOLL), so pulling the tail back is safe.
  r->local_tail -= n;
  r->unsubmitted -= n;
  StoreRelease(r->sq_tail, r->local_tail);
}

bool RingDeferred(const Ring* r) { return (r->setup_flags & IORING_SETUP_DEFER_TASKRUN) != 0; }

bool RingTaskrunPending(const Ring* r) {
  // The kernel sets IORING_SQ_TASKRUN (before signalling the eventfd) when deferred work is
  // queued, and clears it when the work runs inside our GETEVENTS enter.
  return r->sq_flags != nullptr && (__atomic_load_n(r->sq_flags, __ATOMIC_ACQUIRE) & IORING_SQ_TASKRUN) != 0;
}

bool RingWorkPending(const Ring* r) { return *r->cq_head != LoadAcquire(r->cq_tail) || RingTaskrunPending(r); }

static int Enter(Ring* r, unsigned flags) {
  // Release: the SQE contents must be visible to the kernel before it sees the new tail.
  StoreRelease(r->sq_tail, r->local_tail);
  if (r->unsubmitted == 0 && flags == 0) return 0;
  for (;;) {
    long n = ::syscall(__NR_io_uring_enter, r->fd, r->unsubmitted, 0, flags, nullptr, 0);
    if (n >= 0) {
      r->unsubmitted -= static_cast<unsigned>(n);
      return static_cast<int>(n);
    }
    if (errno != EINTR) return -errno;
  }
}

// On deferred rings every enter also runs waiting completion work (min_complete 0: never blocks),
// so CQEs that arrived meanwhile are posted in the same syscall.
int RingSubmit(Ring* r) {
  if (r->unsubmitted == 0) { StoreRelease(r->sq_tail, r->local_tail); return 0; }
  return Enter(r, RingDeferred(r) ? IORING_ENTER_GETEVENTS : 0);
}

int RingGetEvents(Ring* r) { return Enter(r, RingDeferred(r) ? IORING_ENTER_GETEVENTS : 0); }

int RegisterEventfd(Ring* r, int efd) {
  long rc = ::syscall(__NR_io_uring_register, r->fd, IORING_REGISTER_EVENTFD, &efd, 1);
  return rc < 0 ? -errno : 0;
}

}  // namespace blockwork
