import { BdevLayer, createLogger } from '@blockwork/core';
import t from 'tap';
import { AioBdevModule } from '../src/aio-bdev-module';
import { aioRpcMethods } from '../src/rpc';
import { aioEnv } from './fixtures/aio-env';

const ctx = { signal: new AbortController().signal };

t.test('every method has a description and every param a description', async (t) => {
  const methods = aioRpcMethods(new AioBdevModule(new BdevLayer(), createLogger('silent')));
  for (const m of methods) {
    t.ok(m.description.length > 10, `${m.name} described`);
    for (const [p, s] of Object.entries(m.params?.properties ?? {})) t.ok(s.description.length > 5, `${m.name}.${p} described`);
    for (const r of m.params?.required ?? []) t.ok(m.params!.properties[r], `${m.name} required ${r} declared`);
  }
  const create = methods.find((m) => m.name === 'bdev_aio_create')!;
  t.same(create.params!.required, ['name', 'filename']);
  t.same(Object.keys(create.params!.properties).sort(), ['block_size', 'fallocate', 'filename', 'name', 'nowait', 'readonly', 'uuid']);
});

t.test('create returns the name, rescan and delete return true', async (t) => {
  const env = aioEnv(t);
  const [create, del, rescan] = env.module.rpcMethods();
  const uuid = '0d577231-ba8a-46ad-b5fd-98f2eeb6ad70';
  t.equal(await create.handler({ name: 'r0', filename: env.file('r.img', 65536), uuid, nowait: false }, ctx), 'r0');
  t.equal(env.layer.get(uuid)?.name, 'r0', 'the given uuid is an alias');
  t.equal(await rescan.handler({ name: 'r0' }, ctx), true);
  t.equal(await del.handler({ name: 'r0' }, ctx), true);
  t.equal(env.layer.get('r0'), undefined);
});

t.test('nowait: true is refused', async (t) => {
  const env = aioEnv(t);
  const [create] = env.module.rpcMethods();
  t.throws(() => create.handler({ name: 'r1', filename: env.file('r.img', 65536), nowait: true }, ctx), { code: 'AIO_NOWAIT_UNSUPPORTED' });
});
