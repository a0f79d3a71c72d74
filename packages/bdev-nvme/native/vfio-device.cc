// VFIO access for the NVMe PCIe transport: container/group/device set-up with raw ioctls from
// <linux/vfio.h>, BAR0 mapped for registers and doorbells, DMA memory mapped into the IOMMU at
// IOVAs chosen here. Only what JS cannot do lives here; the NVMe logic is in TypeScript.
#include <napi.h>

#include <errno.h>
#include <fcntl.h>
#include <linux/pci_regs.h>
#include <linux/vfio.h>
#include <stdint.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <memory>
#include <string>

namespace {

// A failed syscall reaches JS as a numeric errno plus the syscall name (STYLE.md).
Napi::Value ThrowSys(Napi::Env env, const char* syscall, int err, const std::string& what) {
  Napi::Error e = Napi::Error::New(env, what + ": " + syscall + " failed: " + strerror(err));
  e.Set("errno", Napi::Number::New(env, err));
  e.Set("syscall", Napi::String::New(env, syscall));
  e.ThrowAsJavaScriptException();
  return env.Undefined();
}

// Shared with the finalizers of the DMA ArrayBuffers, which may run after close().
struct Container {
  int fd = -1;
  ~Container() {
    if (fd >= 0) close(fd);
  }
};

struct DmaRegion {
  std::shared_ptr<Container> container;
  void* addr;
  size_t size;
  uint64_t iova;
};

void FreeDma(Napi::Env, void*, DmaRegion* r) {
  if (r->container->fd >= 0) {
    vfio_iommu_type1_dma_unmap unmap{};
    unmap.argsz = sizeof(unmap);
    unmap.iova = r->iova;
    unmap.size = r->size;
    ioctl(r->container->fd, VFIO_IOMMU_UNMAP_DMA, &unmap);
  }
  munmap(r->addr, r->size);
  delete r;
}

// IOVAs handed out from 4 GiB up (inside VT-d's 39-bit default width, clear of low MMIO windows).
constexpr uint64_t kIovaBase = 1ull << 32;

class VfioDevice : public Napi::ObjectWrap<VfioDevice> {
 public:
  static Napi::Function Init(Napi::Env env) {
    return DefineClass(env, "VfioDevice", {
      InstanceMethod("read32", &VfioDevice::Read32),
      InstanceMethod("write32", &VfioDevice::Write32),
      InstanceMethod("read64", &VfioDevice::Read64),
      InstanceMethod("write64", &VfioDevice::Write64),
      InstanceMethod("doorbell", &VfioDevice::Doorbell),
      InstanceMethod("allocDma", &VfioDevice::AllocDma),
      InstanceMethod("close", &VfioDevice::Close),
      InstanceAccessor("bar0Size", &VfioDevice::Bar0Size, nullptr),
    });
  }

  // new VfioDevice(bdf: string, group: number)
  explicit VfioDevice(const Napi::CallbackInfo& info) : Napi::ObjectWrap<VfioDevice>(info) {
    Napi::Env env = info.Env();
    if (info.Length() < 2 || !info[0].IsString() || !info[1].IsNumber()) {
      Napi::TypeError::New(env, "VfioDevice(bdf: string, group: number)").ThrowAsJavaScriptException();
      return;
    }
    bdf_ = info[0].As<Napi::String>().Utf8Value();
    int group = info[1].As<Napi::Number>().Int32Value();
    container_ = std::make_shared<Container>();
    if (!Open(env, group)) Release();
  }

  ~VfioDevice() override { Release(); }

 private:
  bool Open(Napi::Env env, int group) {
    container_->fd = open("/dev/vfio/vfio", O_RDWR | O_CLOEXEC);
    if (container_->fd < 0) return Fail(env, "open /dev/vfio/vfio", errno);
    if (ioctl(container_->fd, VFIO_GET_API_VERSION) != VFIO_API_VERSION) return Fail(env, "VFIO_GET_API_VERSION", EINVAL);
    if (ioctl(container_->fd, VFIO_CHECK_EXTENSION, VFIO_TYPE1_IOMMU) <= 0) return Fail(env, "VFIO_CHECK_EXTENSION", ENOTSUP);
    std::string path = "/dev/vfio/" + std::to_string(group);
    group_fd_ = open(path.c_str(), O_RDWR | O_CLOEXEC);
    if (group_fd_ < 0) return Fail(env, ("open " + path).c_str(), errno);
    vfio_group_status status{};
    status.argsz = sizeof(status);
    if (ioctl(group_fd_, VFIO_GROUP_GET_STATUS, &status) < 0) return Fail(env, "VFIO_GROUP_GET_STATUS", errno);
    // Not viable: another device of the group is bound to a host driver. Reported as EBUSY.
    if (!(status.flags & VFIO_GROUP_FLAGS_VIABLE)) return Fail(env, "VFIO_GROUP_FLAGS_VIABLE", EBUSY);
    if (ioctl(group_fd_, VFIO_GROUP_SET_CONTAINER, &container_->fd) < 0) return Fail(env, "VFIO_GROUP_SET_CONTAINER", errno);
    if (ioctl(container_->fd, VFIO_SET_IOMMU, VFIO_TYPE1_IOMMU) < 0) return Fail(env, "VFIO_SET_IOMMU", errno);
    device_fd_ = ioctl(group_fd_, VFIO_GROUP_GET_DEVICE_FD, bdf_.c_str());
    if (device_fd_ < 0) return Fail(env, "VFIO_GROUP_GET_DEVICE_FD", errno);
    vfio_region_info bar{};
    bar.argsz = sizeof(bar);
    bar.index = VFIO_PCI_BAR0_REGION_INDEX;
    if (ioctl(device_fd_, VFIO_DEVICE_GET_REGION_INFO, &bar) < 0) return Fail(env, "VFIO_DEVICE_GET_REGION_INFO", errno);
    if (!(bar.flags & VFIO_REGION_INFO_FLAG_MMAP) || bar.size < 0x2000) return Fail(env, "VFIO_REGION_INFO_FLAG_MMAP", ENOTSUP);
    void* p = mmap(nullptr, bar.size, PROT_READ | PROT_WRITE, MAP_SHARED, device_fd_, bar.offset);
    if (p == MAP_FAILED) return Fail(env, "mmap BAR0", errno);
    bar0_ = static_cast<volatile uint8_t*>(p);
    bar0_size_ = bar.size;
    return EnableBusMaster(env);
  }

  // PCI_COMMAND: memory space + bus master, through the config space region.
  bool EnableBusMaster(Napi::Env env) {
    vfio_region_info cfg{};
    cfg.argsz = sizeof(cfg);
    cfg.index = VFIO_PCI_CONFIG_REGION_INDEX;
    if (ioctl(device_fd_, VFIO_DEVICE_GET_REGION_INFO, &cfg) < 0) return Fail(env, "VFIO_DEVICE_GET_REGION_INFO", errno);
    uint16_t cmd = 0;
    if (pread(device_fd_, &cmd, 2, cfg.offset + PCI_COMMAND) != 2) return Fail(env, "pread PCI_COMMAND", errno ? errno : EIO);
    cmd |= PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER;
    if (pwrite(device_fd_, &cmd, 2, cfg.offset + PCI_COMMAND) != 2) return Fail(env, "pwrite PCI_COMMAND", errno ? errno : EIO);
    return true;
  }

  bool Fail(Napi::Env env, const char* syscall, int err) {
    ThrowSys(env, syscall, err, "VFIO device " + bdf_);
    return false;
  }

  void Release() {
    if (bar0_ != nullptr) munmap(const_cast<uint8_t*>(bar0_), bar0_size_);
    bar0_ = nullptr;
    if (device_fd_ >= 0) close(device_fd_);
    device_fd_ = -1;
    if (group_fd_ >= 0) close(group_fd_);
    group_fd_ = -1;
    // Closing the container drops every IOMMU mapping; DMA buffers stay valid host memory.
    if (container_ && container_->fd >= 0) close(container_->fd);
    if (container_) container_->fd = -1;
  }

  // Checks the register offset: open, aligned to `width`, inside BAR0. Throws otherwise.
  bool RegOk(const Napi::CallbackInfo& info, uint32_t* off, unsigned width) {
    Napi::Env env = info.Env();
    if (info.Length() < 1 || !info[0].IsNumber()) {
      Napi::TypeError::New(env, "register offset must be a number").ThrowAsJavaScriptException();
      return false;
    }
    int64_t o = info[0].As<Napi::Number>().Int64Value();
    if (bar0_ == nullptr) {
      Napi::Error::New(env, "VFIO device " + bdf_ + " is closed").ThrowAsJavaScriptException();
      return false;
    }
    if (o < 0 || o % width != 0 || static_cast<uint64_t>(o) + width > bar0_size_) {
      Napi::RangeError::New(env, "register offset out of BAR0 or misaligned").ThrowAsJavaScriptException();
      return false;
    }
    *off = static_cast<uint32_t>(o);
    return true;
  }

  Napi::Value Read32(const Napi::CallbackInfo& info) {
    uint32_t off;
    if (!RegOk(info, &off, 4)) return info.Env().Undefined();
    uint32_t v = *reinterpret_cast<volatile uint32_t*>(bar0_ + off);
    return Napi::Number::New(info.Env(), v);
  }

  Napi::Value Write32(const Napi::CallbackInfo& info) {
    uint32_t off;
    if (!RegOk(info, &off, 4)) return info.Env().Undefined();
    if (info.Length() < 2 || !info[1].IsNumber()) {
      Napi::TypeError::New(info.Env(), "value must be a number").ThrowAsJavaScriptException();
      return info.Env().Undefined();
    }
    *reinterpret_cast<volatile uint32_t*>(bar0_ + off) = info[1].As<Napi::Number>().Uint32Value();
    return info.Env().Undefined();
  }

  // 64-bit registers (CAP) are read as two dwords, low first: the spec allows it and not every
  // emulation handles 8-byte MMIO.
  Napi::Value Read64(const Napi::CallbackInfo& info) {
    uint32_t off;
    if (!RegOk(info, &off, 8)) return info.Env().Undefined();
    uint64_t lo = *reinterpret_cast<volatile uint32_t*>(bar0_ + off);
    uint64_t hi = *reinterpret_cast<volatile uint32_t*>(bar0_ + off + 4);
    return Napi::BigInt::New(info.Env(), lo | (hi << 32));
  }

  // ASQ/ACQ: low dword then high dword, written while the controller is disabled.
  Napi::Value Write64(const Napi::CallbackInfo& info) {
    uint32_t off;
    if (!RegOk(info, &off, 8)) return info.Env().Undefined();
    bool lossless = false;
    if (info.Length() < 2 || !info[1].IsBigInt()) {
      Napi::TypeError::New(info.Env(), "value must be a bigint").ThrowAsJavaScriptException();
      return info.Env().Undefined();
    }
    uint64_t v = info[1].As<Napi::BigInt>().Uint64Value(&lossless);
    *reinterpret_cast<volatile uint32_t*>(bar0_ + off) = static_cast<uint32_t>(v);
    *reinterpret_cast<volatile uint32_t*>(bar0_ + off + 4) = static_cast<uint32_t>(v >> 32);
    return info.Env().Undefined();
  }

  // Doorbell write: the SQ entries (or the consumed CQ entries) written to DMA memory must be
  // visible to the device before it sees the new tail/head, hence the full fence first.
  Napi::Value Doorbell(const Napi::CallbackInfo& info) {
    uint32_t off;
    if (!RegOk(info, &off, 4)) return info.Env().Undefined();
    if (info.Length() < 2 || !info[1].IsNumber()) {
      Napi::TypeError::New(info.Env(), "value must be a number").ThrowAsJavaScriptException();
      return info.Env().Undefined();
    }
    uint32_t v = info[1].As<Napi::Number>().Uint32Value();
    __atomic_thread_fence(__ATOMIC_SEQ_CST);
#if defined(__x86_64__)
    __asm__ __volatile__("sfence" ::: "memory");
#endif
    *reinterpret_cast<volatile uint32_t*>(bar0_ + off) = v;
    return info.Env().Undefined();
  }

  // allocDma(bytes) -> { buffer: ArrayBuffer, iova: number }: zeroed anonymous memory mapped for
  // device reads and writes at a fresh IOVA. Unmapped and freed when the ArrayBuffer is collected.
  Napi::Value AllocDma(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (info.Length() < 1 || !info[0].IsNumber()) {
      Napi::TypeError::New(env, "allocDma(bytes: number)").ThrowAsJavaScriptException();
      return env.Undefined();
    }
    int64_t want = info[0].As<Napi::Number>().Int64Value();
    if (want <= 0 || want > (1ll << 30)) {
      Napi::RangeError::New(env, "allocDma: size must be 1 byte .. 1 GiB").ThrowAsJavaScriptException();
      return env.Undefined();
    }
    if (container_->fd < 0) {
      Napi::Error::New(env, "VFIO device " + bdf_ + " is closed").ThrowAsJavaScriptException();
      return env.Undefined();
    }
    size_t size = (static_cast<size_t>(want) + 4095) & ~static_cast<size_t>(4095);
    void* p = mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
    if (p == MAP_FAILED) return ThrowSys(env, "mmap", errno, "DMA memory");
    vfio_iommu_type1_dma_map map{};
    map.argsz = sizeof(map);
    map.flags = VFIO_DMA_MAP_FLAG_READ | VFIO_DMA_MAP_FLAG_WRITE;
    map.vaddr = reinterpret_cast<uint64_t>(p);
    map.iova = kIovaBase + next_iova_;
    map.size = size;
    if (ioctl(container_->fd, VFIO_IOMMU_MAP_DMA, &map) < 0) {
      int err = errno;
      munmap(p, size);
      return ThrowSys(env, "VFIO_IOMMU_MAP_DMA", err, "DMA memory for " + bdf_);
    }
    // A guard gap between regions, so an overrun faults in the IOMMU instead of hitting a neighbour.
    next_iova_ += size + 4096;
    auto* r = new DmaRegion{container_, p, size, map.iova};
    Napi::ArrayBuffer ab = Napi::ArrayBuffer::New(env, p, size, FreeDma, r);
    Napi::Object out = Napi::Object::New(env);
    out.Set("buffer", ab);
    out.Set("iova", Napi::Number::New(env, static_cast<double>(map.iova)));
    return out;
  }

  Napi::Value Close(const Napi::CallbackInfo& info) {
    Release();
    return info.Env().Undefined();
  }

  Napi::Value Bar0Size(const Napi::CallbackInfo& info) {
    return Napi::Number::New(info.Env(), static_cast<double>(bar0_size_));
  }

  std::string bdf_;
  std::shared_ptr<Container> container_;
  int group_fd_ = -1;
  int device_fd_ = -1;
  volatile uint8_t* bar0_ = nullptr;
  uint64_t bar0_size_ = 0;
  uint64_t next_iova_ = 0;
};

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  exports.Set("VfioDevice", VfioDevice::Init(env));
  return exports;
}

}  // namespace

NODE_API_MODULE(blockwork_nvme, Init)
