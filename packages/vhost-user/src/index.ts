/**
 * @blockwork/vhost-user — vhost-user protocol primitives shared by the vhost-user-blk target
 * (@blockwork/vhost-blk) and front end (@blockwork/bdev-virtio): Unix-socket message framing with
 * SCM_RIGHTS fds, eventfds on Node's loop, MAP_SHARED mappings of received fds, memfds, ordered
 * ring-index accesses, and the protocol's constants and payload codecs. See docs/vhost-user.md.
 *
 * @example
 * import { VhostUserListener, VhostUserRequest, VhostUserFlags, encodeU64 } from '@blockwork/vhost-user';
 * const l = await VhostUserListener.listen('/run/vhost.0', { mode: 0o600 }, (c) => {
 *   c.onMessage = (m) => {
 *     if (m.request === VhostUserRequest.GET_FEATURES)
 *       c.send(m.request, VhostUserFlags.VERSION | VhostUserFlags.REPLY, encodeU64(1n << 32n));
 *   };
 * });
 */
export { VhostUserConnection, VhostUserListener, type VhostUserMessage } from './connection';
export { DEFAULT_CONNECT_RETRY_MS, VhostUserConnector, type VhostUserConnectorEvents } from './connector';
export { EventFd } from './eventfd';
export { mmapFd, memfdCreate, closeFd, fdSize, ringOrder, type MappedRegion } from './memory';
export { LOG_PAGE_SIZE, markDirtyPages } from './dirty-log';
export * from './protocol';
export * from './codec';
export * from './virtio-blk-config';
export { VHOST_USER_ERRORS, vhostUserError, type VhostUserErrorCode } from './errors';
