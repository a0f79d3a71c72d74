import t from 'tap';
import { BdevLayer, Errno, IoType, MallocBdevModule, NullBdevModule } from '../src/index';
import type { IoChannel } from '../src/index';

function setup() {
  const layer = new BdevLayer();
  const malloc = new MallocBdevModule(layer);
  const nul = new NullBdevModule(layer);
  const mk = (name: string, numBlocks = 64, blockSize = 512) =>
    malloc.create({ name, uuid: `00000000-0000-4000-8000-${String(numBlocks).padStart(12, '0')}`, numBlocks, blockSize, physicalBlockSize: blockSize, optimalIoBoundary: 0 });
  return { layer, malloc, nul, mk };
}

const status = (ch: IoChannel, type: IoType, off: number, n: number, iovs: Uint8Array[] = []) =>
  new Promise<number>((resolve) => ch.submit(type, off, n, iovs, (s) => resolve(s)));

t.test('registry: names, aliases and uuid are unique and all resolve', async (t) => {
  const { layer, mk } = setup();
  const b = mk('A', 64);
  t.equal(layer.get('A'), b);
  t.equal(layer.get(b.uuid), b, 'uuid is an alias');
  t.throws(() => mk('A', 65), { code: 'BDEV_EXISTS' });
  t.throws(() => mk('B', 64), { code: 'BDEV_EXISTS', message: /00000000-0000-4000-8000-000000000064/ }, 'same uuid refused');
  t.throws(() => layer.open('nope', false), { code: 'BDEV_NOT_FOUND', message: /nope/ });
});

t.test('claims: exclusive_write blocks other writers, not readers', async (t) => {
  const { layer, mk } = setup();
  mk('A');
  const owner = layer.open('A', true);
  owner.claim('passthru');
  t.same(layer.claimOf('A'), { module: 'passthru', type: 'exclusive_write' });
  t.throws(() => layer.open('A', true), { code: 'BDEV_CLAIMED', message: /claimed.*passthru/ });
  const reader = layer.open('A', false);
  t.throws(() => reader.claim('other'), { code: 'BDEV_CLAIMED' });
  owner.close();
  t.equal(layer.claimOf('A'), null, 'closing the owner releases the claim');
  const writer = layer.open('A', true);
  t.throws(() => layer.open('A', false).claim('x'), { code: 'BDEV_CLAIMED', message: /another writer/ });
  writer.close();
  reader.close();
});

t.test('a read-only descriptor cannot write, unmap or write zeroes', async (t) => {
  const { layer, mk } = setup();
  mk('A');
  const ch = layer.open('A', false).getIoChannel();
  t.equal(await status(ch, IoType.WRITE, 0, 1, [Buffer.alloc(512)]), -Errno.EBADF);
  t.equal(await status(ch, IoType.UNMAP, 0, 1), -Errno.EBADF);
  t.equal(await status(ch, IoType.WRITE_ZEROES, 0, 1), -Errno.EBADF);
  t.equal(await status(ch, IoType.READ, 0, 1, [Buffer.alloc(512)]), 0);
});

t.test('unsupported I/O types fail with -ENOTSUP before reaching the driver', async (t) => {
  const { layer, nul } = setup();
  nul.create({ name: 'N', uuid: '11111111-1111-4111-8111-111111111111', numBlocks: 64, blockSize: 4096, physicalBlockSize: 4096 });
  const ch = layer.open('N', true).getIoChannel();
  t.equal(await status(ch, IoType.UNMAP, 0, 1), -Errno.ENOTSUP);
  t.equal(await status(ch, IoType.FLUSH, 0, 1), -Errno.ENOTSUP);
  t.equal(await status(ch, IoType.WRITE_ZEROES, 0, 1), 0);
});

t.test('refused I/O completes asynchronously, never inside submit', async (t) => {
  const { layer, mk } = setup();
  mk('A');
  const ch = layer.open('A', true).getIoChannel();
  let completed = false;
  const p = new Promise<void>((resolve) => ch.read([Buffer.alloc(512)], 64, 1, () => { completed = true; resolve(); }));
  t.equal(completed, false, 'not completed synchronously');
  await p;
  t.equal(completed, true);
});

t.test('non-integer and negative offsets are refused', async (t) => {
  const { layer, mk } = setup();
  mk('A');
  const ch = layer.open('A', true).getIoChannel();
  t.equal(await status(ch, IoType.READ, 1.5, 1, [Buffer.alloc(512)]), -Errno.EINVAL);
  t.equal(await status(ch, IoType.READ, -1, 1, [Buffer.alloc(512)]), -Errno.EINVAL);
  t.equal(await status(ch, IoType.READ, 0, Number.NaN, [Buffer.alloc(512)]), -Errno.EINVAL);
});

t.test('iostat counts ops, bytes, latency and errors; histogram records reads and writes', async (t) => {
  const { layer, mk } = setup();
  mk('A');
  const ch = layer.open('A', true).getIoChannel();
  for (let i = 0; i < 10; i++) await status(ch, IoType.WRITE, i, 2, [Buffer.alloc(1024)]);
  for (let i = 0; i < 5; i++) await status(ch, IoType.READ, i, 1, [Buffer.alloc(512)]);
  await status(ch, IoType.READ, 63, 2, [Buffer.alloc(1024)]);
  const s = layer.stat('A').toJson('A');
  t.equal(s.num_write_ops, 10);
  t.equal(s.bytes_written, 10240);
  t.equal(s.num_read_ops, 5);
  t.equal(s.bytes_read, 2560);
  t.ok((s.write_latency_ticks as number) > 0, 'latency summed');
  t.ok((s.min_write_latency_ticks as number) <= (s.max_write_latency_ticks as number));
  t.equal(s.num_read_ops, 5, 'failed I/O not counted as an op');
  t.same(s.io_error, {}, 'refused before the driver: not a device error');
  const h = layer.stat('A').histogram;
  t.equal(h.total, 15);
  t.ok(h.quantile(0.5) > 0 && h.quantile(0.5) <= h.quantile(0.99));
});

t.test('resize is announced to descriptor owners', async (t) => {
  const { layer, nul } = setup();
  nul.create({ name: 'N', uuid: '11111111-1111-4111-8111-111111111112', numBlocks: 64, blockSize: 512, physicalBlockSize: 512 });
  const events: string[] = [];
  layer.open('N', false, (ev) => events.push(ev));
  nul.resize('N', 1);
  t.same(events, ['resize']);
  t.equal(layer.get('N')!.numBlocks, 2048);
});

t.test('a filter inserted under open descriptors sees every later write before the driver, and can be removed', async (t) => {
  const { layer, mk } = setup();
  mk('A');
  const ch = layer.open('A', true).getIoChannel();
  await status(ch, IoType.WRITE, 0, 1, [Buffer.alloc(512, 1)]);
  const seen: string[] = [];
  const remove = layer.insertFilter('A', {
    submit(io, done, next) {
      seen.push(`${IoType[io.type]}@${io.offsetBlocks}`);
      next.submit(io, done);
    },
  });
  const late = layer.open('A', false).getIoChannel();
  t.equal(await status(ch, IoType.WRITE, 5, 2, [Buffer.alloc(1024, 2)]), 0);
  t.equal(await status(ch, IoType.UNMAP, 9, 1), 0);
  const back = Buffer.alloc(1024);
  t.equal(await status(late, IoType.READ, 5, 2, [back]), 0);
  t.ok(back.equals(Buffer.alloc(1024, 2)), 'data went through to the driver');
  t.same(seen, ['WRITE@5', 'UNMAP@9', 'READ@5'], 'existing and new descriptors both pass the filter');
  remove();
  await status(ch, IoType.WRITE, 7, 1, [Buffer.alloc(512)]);
  t.equal(seen.length, 3, 'removed filter sees nothing more');
});

t.test('a filter may hold I/O and release it later', async (t) => {
  const { layer, mk } = setup();
  mk('A');
  const ch = layer.open('A', true).getIoChannel();
  const held: Array<() => void> = [];
  layer.insertFilter('A', { submit: (io, done, next) => held.push(() => next.submit(io, done)) });
  let completed = false;
  const p = status(ch, IoType.WRITE, 1, 1, [Buffer.alloc(512, 7)]).then((s) => { completed = true; return s; });
  await new Promise((r) => setTimeout(r, 20));
  t.equal(completed, false, 'held while the filter keeps it');
  t.equal(ch.inflight, 1);
  held.forEach((f) => f());
  t.equal(await p, 0);
});
