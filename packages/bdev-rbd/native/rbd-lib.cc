#include "rbd-lib.h"
#include <dlfcn.h>

namespace blockwork {
namespace {

RbdLib lib;
bool loaded = false;

template <typename T>
bool Sym(void* h, const char* name, T* out, std::string* err) {
  void* p = dlsym(h, name);
  if (p == nullptr) {
    if (err != nullptr) *err = std::string("symbol ") + name + " missing: " + dlerror();
    return false;
  }
  *out = reinterpret_cast<T>(p);
  return true;
}

}  // namespace

const RbdLib* Rbd() { return loaded ? &lib : nullptr; }

std::string LoadRbdLib(const std::string& rados_path, const std::string& rbd_path) {
  if (loaded) return "";
  // RTLD_GLOBAL: librbd resolves librados symbols against the copy we opened (same soname).
  void* rados = dlopen(rados_path.c_str(), RTLD_NOW | RTLD_GLOBAL);
  if (rados == nullptr) return std::string("dlopen ") + rados_path + ": " + dlerror();
  void* rbd = dlopen(rbd_path.c_str(), RTLD_NOW | RTLD_GLOBAL);
  if (rbd == nullptr) return std::string("dlopen ") + rbd_path + ": " + dlerror();
  std::string err;
  RbdLib l{};
  bool ok = Sym(rados, "rados_create2", &l.rados_create2, &err) && Sym(rados, "rados_conf_read_file", &l.rados_conf_read_file, &err) &&
            Sym(rados, "rados_conf_set", &l.rados_conf_set, &err) &&
            Sym(rados, "rados_conf_get", &l.rados_conf_get, &err) && Sym(rados, "rados_connect", &l.rados_connect, &err) &&
            Sym(rados, "rados_shutdown", &l.rados_shutdown, &err) && Sym(rados, "rados_ioctx_create", &l.rados_ioctx_create, &err) &&
            Sym(rados, "rados_ioctx_destroy", &l.rados_ioctx_destroy, &err) && Sym(rbd, "rbd_version", &l.rbd_version, &err) &&
            Sym(rbd, "rbd_open", &l.rbd_open, &err) && Sym(rbd, "rbd_close", &l.rbd_close, &err) &&
            Sym(rbd, "rbd_get_size", &l.rbd_get_size, &err) && Sym(rbd, "rbd_resize", &l.rbd_resize, &err) &&
            Sym(rbd, "rbd_aio_create_completion", &l.rbd_aio_create_completion, &err) &&
            Sym(rbd, "rbd_aio_get_return_value", &l.rbd_aio_get_return_value, &err) &&
            Sym(rbd, "rbd_aio_release", &l.rbd_aio_release, &err) && Sym(rbd, "rbd_aio_readv", &l.rbd_aio_readv, &err) &&
            Sym(rbd, "rbd_aio_writev", &l.rbd_aio_writev, &err) && Sym(rbd, "rbd_aio_flush", &l.rbd_aio_flush, &err) &&
            Sym(rbd, "rbd_aio_discard", &l.rbd_aio_discard, &err);
  if (!ok) return err;
  // Optional: JS falls back to discard when it is missing (librbd before Octopus).
  Sym(rbd, "rbd_aio_write_zeroes", &l.rbd_aio_write_zeroes, nullptr);
  dlerror();
  lib = l;
  loaded = true;
  return "";
}

}  // namespace blockwork
