/**
 * vhost-user and virtio constants (QEMU docs/interop/vhost-user.rst, virtio 1.x §2.7 split
 * virtqueues and §5.2 block device). Numbers only; the codecs live in codec.ts.
 */

/** Front-end → back-end request numbers (the header's `request` field). */
export const VhostUserRequest = {
  GET_FEATURES: 1,
  SET_FEATURES: 2,
  SET_OWNER: 3,
  RESET_OWNER: 4,
  SET_MEM_TABLE: 5,
  SET_LOG_BASE: 6,
  SET_LOG_FD: 7,
  SET_VRING_NUM: 8,
  SET_VRING_ADDR: 9,
  SET_VRING_BASE: 10,
  GET_VRING_BASE: 11,
  SET_VRING_KICK: 12,
  SET_VRING_CALL: 13,
  SET_VRING_ERR: 14,
  GET_PROTOCOL_FEATURES: 15,
  SET_PROTOCOL_FEATURES: 16,
  GET_QUEUE_NUM: 17,
  SET_VRING_ENABLE: 18,
  SEND_RARP: 19,
  NET_SET_MTU: 20,
  SET_BACKEND_REQ_FD: 21,
  IOTLB_MSG: 22,
  SET_VRING_ENDIAN: 23,
  GET_CONFIG: 24,
  SET_CONFIG: 25,
  CREATE_CRYPTO_SESSION: 26,
  CLOSE_CRYPTO_SESSION: 27,
  POSTCOPY_ADVISE: 28,
  POSTCOPY_LISTEN: 29,
  POSTCOPY_END: 30,
  GET_INFLIGHT_FD: 31,
  SET_INFLIGHT_FD: 32,
  GPU_SET_SOCKET: 33,
  RESET_DEVICE: 34,
  VRING_KICK: 35,
  GET_MAX_MEM_SLOTS: 36,
  ADD_MEM_REG: 37,
  REM_MEM_REG: 38,
  SET_STATUS: 39,
  GET_STATUS: 40,
  GET_SHARED_OBJECT: 41,
  SET_DEVICE_STATE_FD: 42,
  CHECK_DEVICE_STATE: 43,
} as const;

/** Name of a request number for messages and logs, e.g. 5 → "SET_MEM_TABLE"; unknown → "REQUEST_99". */
export function requestName(request: number): string {
  for (const [k, v] of Object.entries(VhostUserRequest)) if (v === request) return k;
  return `REQUEST_${request}`;
}

/** Header flag bits. Every message carries VERSION; replies add REPLY. */
export const VhostUserFlags = {
  /** Protocol version 1 in bits 0-1. */
  VERSION: 1,
  VERSION_MASK: 3,
  REPLY: 1 << 2,
  /** With REPLY_ACK negotiated: the back end answers this request with a u64 (0 = success). */
  NEED_REPLY: 1 << 3,
} as const;

/** Protocol feature bit numbers (GET/SET_PROTOCOL_FEATURES). */
export const VhostUserProtocolFeature = {
  MQ: 0,
  LOG_SHMFD: 1,
  RARP: 2,
  REPLY_ACK: 3,
  NET_MTU: 4,
  BACKEND_REQ: 5,
  CROSS_ENDIAN: 6,
  CRYPTO_SESSION: 7,
  PAGEFAULT: 8,
  CONFIG: 9,
  BACKEND_SEND_FD: 10,
  HOST_NOTIFIER: 11,
  INFLIGHT_SHMFD: 12,
  RESET_DEVICE: 13,
  INBAND_NOTIFICATIONS: 14,
  CONFIGURE_MEM_SLOTS: 15,
  STATUS: 16,
  XEN_MMAP: 17,
  SHARED_OBJECT: 18,
  DEVICE_STATE: 19,
} as const;

/** Device-independent virtio feature bit numbers (GET/SET_FEATURES), plus vhost-user's bit 30. */
export const VirtioFeature = {
  NOTIFY_ON_EMPTY: 24,
  ANY_LAYOUT: 27,
  RING_INDIRECT_DESC: 28,
  RING_EVENT_IDX: 29,
  VHOST_USER_F_PROTOCOL_FEATURES: 30,
  VERSION_1: 32,
  ACCESS_PLATFORM: 33,
  RING_PACKED: 34,
  IN_ORDER: 35,
  /** VHOST_F_LOG_ALL: dirty logging for live migration. */
  LOG_ALL: 26,
} as const;

/** virtio-blk feature bit numbers. */
export const VirtioBlkFeature = {
  SIZE_MAX: 1,
  SEG_MAX: 2,
  GEOMETRY: 4,
  RO: 5,
  BLK_SIZE: 6,
  FLUSH: 9,
  TOPOLOGY: 10,
  CONFIG_WCE: 11,
  MQ: 12,
  DISCARD: 13,
  WRITE_ZEROES: 14,
  SECURE_ERASE: 16,
} as const;

/** virtio-blk request types (virtio_blk_outhdr.type). */
export const VirtioBlkType = {
  IN: 0,
  OUT: 1,
  FLUSH: 4,
  GET_ID: 8,
  GET_LIFETIME: 10,
  DISCARD: 11,
  WRITE_ZEROES: 13,
  SECURE_ERASE: 14,
} as const;

/** virtio-blk status byte values (the last, device-writable byte of a request). */
export const VirtioBlkStatus = { OK: 0, IOERR: 1, UNSUPP: 2 } as const;

/** virtio-blk request header {type u32, reserved u32, sector u64}: 16 bytes; sectors are 512 bytes. */
export const VIRTIO_BLK_OUTHDR_SIZE = 16;
export const VIRTIO_BLK_SECTOR_SIZE = 512;
/** A DISCARD/WRITE_ZEROES segment {sector u64, num_sectors u32, flags u32}; flags bit 0 = unmap. */
export const VIRTIO_BLK_DISCARD_SEG_SIZE = 16;
export const VIRTIO_BLK_WRITE_ZEROES_FLAG_UNMAP = 1;
/** GET_ID returns a 20-byte serial. */
export const VIRTIO_BLK_ID_BYTES = 20;

/** Split virtqueue descriptor flags. */
export const VringDescFlags = { NEXT: 1, WRITE: 2, INDIRECT: 4 } as const;
/** used.flags bit: the device asks not to be kicked. avail.flags bit: the driver asks for no call. */
export const VRING_USED_F_NO_NOTIFY = 1;
export const VRING_AVAIL_F_NO_INTERRUPT = 1;
/** Descriptor {addr u64, len u32, flags u16, next u16}. */
export const VRING_DESC_SIZE = 16;
/** Maximum queue size of a split virtqueue. */
export const VRING_MAX_SIZE = 32768;

/** vring address flags (vhost_vring_addr.flags): log used-ring writes. */
export const VHOST_VRING_F_LOG = 1;
/** SET_VRING_KICK/CALL/ERR payload: queue index in bits 0-7; bit 8 set means "no fd sent" (polling). */
export const VHOST_USER_VRING_IDX_MASK = 0xff;
export const VHOST_USER_VRING_NOFD_MASK = 1 << 8;

/** Limits of the protocol as this package enforces them. */
export const VHOST_USER_HEADER_SIZE = 12;
export const VHOST_USER_MAX_PAYLOAD = 4096;
export const VHOST_USER_MAX_FDS = 8;
export const VHOST_USER_MAX_MEM_REGIONS = 8;
export const VHOST_USER_MAX_CONFIG_SIZE = 256;

/** Byte sizes of a split ring's three parts for `num` entries (EVENT_IDX fields included). */
export function vringSizes(num: number): { desc: number; avail: number; used: number } {
  return { desc: VRING_DESC_SIZE * num, avail: 6 + 2 * num, used: 6 + 8 * num };
}
