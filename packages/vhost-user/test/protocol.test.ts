import t from 'tap';
import { requestName, VhostUserFlags, VhostUserProtocolFeature, VhostUserRequest, VirtioBlkFeature, VirtioFeature, vringSizes } from '../src';

t.test('request numbers and names', async (t) => {
  t.match(VhostUserRequest, { GET_FEATURES: 1, SET_MEM_TABLE: 5, GET_CONFIG: 24, GET_INFLIGHT_FD: 31, SET_INFLIGHT_FD: 32, SET_STATUS: 39, GET_STATUS: 40 });
  t.equal(requestName(5), 'SET_MEM_TABLE');
  t.equal(requestName(99), 'REQUEST_99');
  t.equal(new Set(Object.values(VhostUserRequest)).size, Object.keys(VhostUserRequest).length, 'no duplicates');
});

t.test('feature bits match the spec', async (t) => {
  t.match(VhostUserFlags, { VERSION: 1, REPLY: 4, NEED_REPLY: 8 });
  t.match(VhostUserProtocolFeature, { MQ: 0, LOG_SHMFD: 1, REPLY_ACK: 3, CONFIG: 9, INFLIGHT_SHMFD: 12, STATUS: 16 });
  t.match(VirtioFeature, { VERSION_1: 32, RING_INDIRECT_DESC: 28, RING_EVENT_IDX: 29, VHOST_USER_F_PROTOCOL_FEATURES: 30 });
  t.match(VirtioBlkFeature, { SIZE_MAX: 1, SEG_MAX: 2, RO: 5, BLK_SIZE: 6, FLUSH: 9, TOPOLOGY: 10, MQ: 12, DISCARD: 13, WRITE_ZEROES: 14 });
});

t.test('split ring part sizes', async (t) => {
  t.same(vringSizes(256), { desc: 4096, avail: 518, used: 2054 });
});
