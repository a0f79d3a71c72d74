import t from 'tap';
import { connectOptions, DEFAULT_TIMEOUT_SEC } from '../src/rbd-connection';

t.test('timeouts and discard default on; keyring from key_file; config_param wins', async (t) => {
  const o = Object.fromEntries(connectOptions({ keyFile: '/k', configParam: { rados_osd_op_timeout: '5', mon_host: 'm' } }));
  t.same(o, { rados_osd_op_timeout: '5', rados_mon_op_timeout: String(DEFAULT_TIMEOUT_SEC), client_mount_timeout: String(DEFAULT_TIMEOUT_SEC),
    rbd_skip_partial_discard: 'false', keyring: '/k', mon_host: 'm' });
});
