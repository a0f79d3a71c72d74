import t from 'tap';
import { libraryPaths, rbdAddon } from '../src/native';

t.test('the addon loads without librbd and reports a missing library as text', async (t) => {
  const n = rbdAddon();
  t.match(n.load('librados.so.2', '/nonexistent/librbd.so.1') ?? 'loaded', /nonexistent|loaded/);
  t.same(libraryPaths(), { rados: process.env.BLOCKWORK_LIBRADOS || 'librados.so.2', rbd: process.env.BLOCKWORK_LIBRBD || 'librbd.so.1' });
});

t.test('malformed arguments throw TypeError before any work', async (t) => {
  const n = rbdAddon();
  t.throws(() => n.load(1 as unknown as string, 'x'), TypeError);
  t.throws(() => n.imageSize({} as never), TypeError);
  t.throws(() => new n.RbdQueue({} as never, 4, new Uint32Array(4), new Int32Array(4), () => {}), TypeError);
  t.throws(() => n.connect('admin', null, false, [['a', 1 as unknown as string]]), TypeError);
});
