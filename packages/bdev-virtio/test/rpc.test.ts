import t from 'tap';
import { setup } from './fixtures/env';

t.test('SPDK method names, documented params, required ones as SPDK', async (t) => {
  const { methods } = setup(t);
  t.same(Object.keys(methods).sort(), ['bdev_virtio_attach_controller', 'bdev_virtio_detach_controller']);
  const attach = methods.bdev_virtio_attach_controller;
  t.same(attach.params!.required, ['name', 'trtype', 'traddr', 'dev_type']);
  for (const [k, v] of Object.entries(attach.params!.properties)) t.ok((v as { description?: string }).description, `${k} described`);
  t.same(methods.bdev_virtio_detach_controller.params!.required, ['name']);
});
