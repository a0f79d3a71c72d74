import t from 'tap';
import { connect, type Socket } from 'node:net';
import { SocketReader } from '../src/byte-queue';
import { negotiateClient } from '../src/client-negotiation';
import {
  encodeInfoRequest, encodeOption, encodeRequest, NBD_CMD_READ, NBD_CMD_WRITE, NBD_EINVAL, NBD_EPERM, NBD_FLAG_C_FIXED_NEWSTYLE,
  NBD_FLAG_CAN_MULTI_CONN, NBD_FLAG_HAS_FLAGS, NBD_FLAG_READ_ONLY, NBD_FLAG_SEND_FLUSH, NBD_FLAG_SEND_FUA, NBD_FLAG_SEND_TRIM,
  NBD_FLAG_SEND_WRITE_ZEROES, NBD_OPT_ABORT, NBD_OPT_GO, NBD_OPT_LIST, NBD_OPT_STRUCTURED_REPLY, NBD_REP_ACK,
  NBD_REP_ERR_UNKNOWN, NBD_REP_ERR_UNSUP, NBD_REP_SERVER,
} from '../src/protocol';
import { exportingDaemon, nbdOf, tempDir } from './fixtures/helpers';

function open(path: string): Promise<{ s: Socket; r: SocketReader }> {
  return new Promise((resolve, reject) => {
    const s = connect(path, () => resolve({ s, r: new SocketReader(s) }));
    s.once('error', reject);
  });
}

/** Connects and negotiates `name` with NBD_OPT_GO; returns the socket ready for transmission. */
async function session(path: string, name = 'disk') {
  const { s, r } = await open(path);
  const info = await negotiateClient(s, r, name);
  return { s, r, info };
}

function closed(s: Socket): Promise<void> {
  return new Promise((resolve) => (s.destroyed ? resolve() : s.once('close', () => resolve())));
}

function request(s: Socket, type: number, handle: number, offset: number, length: number, payload?: Buffer): void {
  const h = Buffer.alloc(28);
  encodeRequest(h, 0, type, 0, 0, handle, offset, length);
  s.write(payload ? Buffer.concat([h, payload]) : h);
}

async function reply(r: SocketReader, dataLen = 0): Promise<{ error: number; handle: number; data: Buffer }> {
  const h = await r.read(16);
  const error = h.readUInt32BE(4);
  return { error, handle: h.readUInt32BE(12), data: error === 0 && dataLen > 0 ? await r.read(dataLen) : Buffer.alloc(0) };
}

/** Reads option replies up to and including ACK or an error. */
async function optionReplies(r: SocketReader): Promise<Array<{ type: number; data: Buffer }>> {
  const out: Array<{ type: number; data: Buffer }> = [];
  for (;;) {
    const h = await r.read(20);
    const type = h.readUInt32BE(12);
    out.push({ type, data: await r.read(h.readUInt32BE(16)) });
    if (type === NBD_REP_ACK || type >= 0x80000000) return out;
  }
}

async function handshake(s: Socket, r: SocketReader): Promise<void> {
  await r.read(18);
  const f = Buffer.alloc(4);
  f.writeUInt32BE(NBD_FLAG_C_FIXED_NEWSTYLE, 0);
  s.write(f);
}

t.test('NBD_OPT_GO reports size, block sizes and flags from the bdev', async (t) => {
  const { d, socket } = await exportingDaemon(tempDir(t));
  t.teardown(() => d.stop());
  const { s, info } = await session(socket);
  t.teardown(() => s.destroy());
  t.equal(info.size, 2048 * 512);
  t.same([info.minBlock, info.preferredBlock, info.maxBlock], [512, 4096, 32 << 20]);
  t.equal(info.flags, NBD_FLAG_HAS_FLAGS | NBD_FLAG_SEND_FLUSH | NBD_FLAG_SEND_FUA | NBD_FLAG_SEND_TRIM | NBD_FLAG_SEND_WRITE_ZEROES | NBD_FLAG_CAN_MULTI_CONN);
});

t.test('NBD_OPT_LIST names the exports; unknown GO gets ERR_UNKNOWN; STRUCTURED_REPLY is refused; ABORT is acked', async (t) => {
  const { d, socket } = await exportingDaemon(tempDir(t));
  t.teardown(() => d.stop());
  await d.call('nbd_server_add_export', { bdev: 'Malloc0', name: 'second', readonly: true });
  const { s, r } = await open(socket);
  t.teardown(() => s.destroy());
  await handshake(s, r);
  s.write(encodeOption(NBD_OPT_LIST));
  const list = await optionReplies(r);
  t.same(list.filter((x) => x.type === NBD_REP_SERVER).map((x) => x.data.toString('utf8', 4)), ['disk', 'second']);
  s.write(encodeOption(NBD_OPT_STRUCTURED_REPLY));
  t.equal((await optionReplies(r))[0].type, NBD_REP_ERR_UNSUP, 'structured replies refused: simple replies only');
  s.write(encodeOption(NBD_OPT_GO, encodeInfoRequest('missing', [])));
  t.equal((await optionReplies(r))[0].type, NBD_REP_ERR_UNKNOWN);
  s.write(encodeOption(NBD_OPT_ABORT));
  t.equal((await optionReplies(r))[0].type, NBD_REP_ACK);
  await closed(s);
});

t.test('requests run concurrently and replies carry their handles', async (t) => {
  const { d, socket } = await exportingDaemon(tempDir(t));
  t.teardown(() => d.stop());
  const { s, r } = await session(socket);
  t.teardown(() => s.destroy());
  for (let i = 0; i < 16; i++) request(s, NBD_CMD_WRITE, 100 + i, i * 512, 512, Buffer.alloc(512, i + 1));
  const handles = new Set<number>();
  for (let i = 0; i < 16; i++) {
    const rep = await reply(r);
    t.equal(rep.error, 0);
    handles.add(rep.handle);
  }
  t.equal(handles.size, 16, 'every handle answered once');
  request(s, NBD_CMD_READ, 7, 5 * 512, 512);
  const rep = await reply(r, 512);
  t.same([rep.handle, rep.data], [7, Buffer.alloc(512, 6)]);
});

t.test('a request past the end gets EINVAL and the connection stays usable', async (t) => {
  const { d, socket } = await exportingDaemon(tempDir(t));
  t.teardown(() => d.stop());
  const { s, r } = await session(socket);
  t.teardown(() => s.destroy());
  request(s, NBD_CMD_READ, 1, 2048 * 512 - 512, 1024);
  t.same((await reply(r)).error, NBD_EINVAL);
  request(s, NBD_CMD_WRITE, 2, 2048 * 512, 512, Buffer.alloc(512));
  t.same((await reply(r)).error, NBD_EINVAL, 'write past the end: payload consumed, EINVAL');
  request(s, NBD_CMD_READ, 3, 0, 512);
  t.equal((await reply(r, 512)).error, 0);
});

t.test('bad magic or a huge length closes only that connection; the server keeps serving', async (t) => {
  const { d, socket } = await exportingDaemon(tempDir(t));
  t.teardown(() => d.stop());
  const good = await session(socket);
  t.teardown(() => good.s.destroy());
  const bad1 = await session(socket);
  bad1.s.write(Buffer.alloc(28, 0x41));
  await closed(bad1.s);
  t.pass('bad magic: closed');
  const bad2 = await session(socket);
  request(bad2.s, NBD_CMD_READ, 1, 0, 0xffffffff);
  await closed(bad2.s);
  t.pass('4 GiB read: closed');
  const bad3 = await session(socket);
  request(bad3.s, NBD_CMD_WRITE, 1, 0, 64 << 20);
  await closed(bad3.s);
  t.pass('64 MiB write: closed');
  const bad4 = await open(socket);
  bad4.s.write(Buffer.alloc(40, 0xff));
  await closed(bad4.s);
  t.pass('garbage during negotiation: closed');
  request(good.s, NBD_CMD_READ, 9, 0, 512);
  t.equal((await reply(good.r, 512)).handle, 9, 'the other connection still works');
  const fresh = await session(socket);
  fresh.s.destroy();
  t.pass('new connections still accepted');
});

t.test('read-only export: READ_ONLY flag, writes fail with EPERM', async (t) => {
  const { d, socket } = await exportingDaemon(tempDir(t));
  t.teardown(() => d.stop());
  await d.call('nbd_server_add_export', { bdev: 'Malloc0', name: 'ro', readonly: true });
  const { s, r, info } = await session(socket, 'ro');
  t.teardown(() => s.destroy());
  t.ok(info.flags & NBD_FLAG_READ_ONLY);
  t.notOk(info.flags & NBD_FLAG_SEND_TRIM);
  request(s, NBD_CMD_WRITE, 1, 0, 512, Buffer.alloc(512, 1));
  t.equal((await reply(r)).error, NBD_EPERM);
});

t.test('hot-remove of the bdev closes its connections and drops the export', async (t) => {
  const { d, socket } = await exportingDaemon(tempDir(t));
  t.teardown(() => d.stop());
  const { s } = await session(socket);
  await d.call('bdev_malloc_delete', { name: 'Malloc0' });
  await closed(s);
  t.same(await d.call('nbd_server_get_exports'), []);
});

t.test('RPC: exports listed, removed, errors by code, save_config round trip', async (t) => {
  const { d, socket } = await exportingDaemon(tempDir(t));
  t.teardown(() => d.stop());
  const { s } = await session(socket);
  await new Promise((r) => setTimeout(r, 20));
  t.match(await d.call('nbd_server_get_exports'), [{ name: 'disk', bdev_name: 'Malloc0', readonly: false, size: 1048576, block_size: 512, connections: 1 }]);
  await t.rejects(d.call('nbd_server_add_export', { bdev: 'Malloc0', name: 'disk' }), { code: 'NBD_EXPORT_EXISTS' });
  await t.rejects(d.call('nbd_server_add_export', { bdev: 'nope' }), { code: 'BDEV_NOT_FOUND' });
  await t.rejects(d.call('nbd_server_remove_export', { name: 'nope' }), { code: 'NBD_EXPORT_NOT_FOUND' });
  await t.rejects(d.call('nbd_server_start', { socket }), { code: 'NBD_SERVER_RUNNING' });
  t.same(await d.call('framework_get_config', { name: 'nbd' }), [
    { method: 'nbd_server_start', params: { socket } },
    { method: 'nbd_server_add_export', params: { bdev: 'Malloc0', name: 'disk' } },
  ]);
  t.equal(await d.call('nbd_server_remove_export', { name: 'disk' }), true);
  await closed(s);
  t.equal(await d.call('nbd_server_stop'), true);
  await t.rejects(d.call('nbd_server_stop'), { code: 'NBD_SERVER_NOT_RUNNING' });
  t.equal(nbdOf(d).server.running, false);
});
