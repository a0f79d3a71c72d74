// librados/librbd entry points, resolved with dlopen at run time so that the addon builds and loads
// on machines without Ceph (no librbd-dev headers, no -lrbd). The prototypes are copied from
// librados.h / librbd.h (stable C ABI since Luminous); only the calls this package uses.
#pragma once
#include <sys/types.h>
#include <sys/uio.h>
#include <cstddef>
#include <cstdint>
#include <string>

namespace blockwork {

typedef void* rados_t;
typedef void* rados_ioctx_t;
typedef void* rbd_image_t;
typedef void* rbd_completion_t;
typedef void (*rbd_callback_t)(rbd_completion_t cb, void* arg);

struct RbdLib {
  int (*rados_create2)(rados_t*, const char* clustername, const char* name, uint64_t flags);
  int (*rados_conf_read_file)(rados_t, const char* path);
  int (*rados_conf_set)(rados_t, const char* option, const char* value);
  int (*rados_conf_get)(rados_t, const char* option, char* buf, size_t len);
  int (*rados_connect)(rados_t);
  void (*rados_shutdown)(rados_t);
  int (*rados_ioctx_create)(rados_t, const char* pool, rados_ioctx_t*);
  void (*rados_ioctx_destroy)(rados_ioctx_t);
  void (*rbd_version)(int* major, int* minor, int* extra);
  int (*rbd_open)(rados_ioctx_t, const char* name, rbd_image_t* image, const char* snap_name);
  int (*rbd_close)(rbd_image_t);
  int (*rbd_get_size)(rbd_image_t, uint64_t* size);
  int (*rbd_resize)(rbd_image_t, uint64_t size);
  int (*rbd_aio_create_completion)(void* cb_arg, rbd_callback_t complete_cb, rbd_completion_t* c);
  ssize_t (*rbd_aio_get_return_value)(rbd_completion_t c);
  void (*rbd_aio_release)(rbd_completion_t c);
  int (*rbd_aio_readv)(rbd_image_t, const struct iovec* iov, int iovcnt, uint64_t off, rbd_completion_t c);
  int (*rbd_aio_writev)(rbd_image_t, const struct iovec* iov, int iovcnt, uint64_t off, rbd_completion_t c);
  int (*rbd_aio_flush)(rbd_image_t, rbd_completion_t c);
  int (*rbd_aio_discard)(rbd_image_t, uint64_t off, uint64_t len, rbd_completion_t c);
  // Optional (librbd >= 1.15, Octopus); null when the library lacks it.
  int (*rbd_aio_write_zeroes)(rbd_image_t, uint64_t off, size_t len, rbd_completion_t c, int zero_flags, int op_flags);
};

// The loaded library, or null before a successful LoadRbdLib.
const RbdLib* Rbd();

// dlopen()s both libraries and resolves every symbol. Returns "" on success (also when already
// loaded), otherwise a message naming the library or symbol and dlerror()'s text.
std::string LoadRbdLib(const std::string& rados_path, const std::string& rbd_path);

}  // namespace blockwork
