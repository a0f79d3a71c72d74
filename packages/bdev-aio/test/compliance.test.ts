import t from 'tap';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runBdevCompliance } from '@blockwork/core';

// os.tmpdir() is ext4 on these machines, so O_DIRECT reaches a real filesystem.
const dir = mkdtempSync(join(tmpdir(), 'bw-aio-compliance-'));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));
let n = 0;

runBdevCompliance(t, 'aio', {
  plugins: [join(__dirname, '..')],
  create: async (d) => {
    const filename = join(dir, `disk${n++}.img`);
    writeFileSync(filename, Buffer.alloc(4 << 20));
    return (await d.call('bdev_aio_create', { name: 'aio0', filename, block_size: 4096, fallocate: true })) as string;
  },
});
