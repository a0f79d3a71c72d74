import t from 'tap';
import { spawnSync } from 'node:child_process';
import { ftruncateSync } from 'node:fs';
import { resolve } from 'node:path';
import { closeFd, memfdCreate, mmapFd } from '../src';

const tick = () => new Promise((r) => setTimeout(r, 20));

t.test('a peer truncating its memfd under a mapping: no crash, zero pages, the owner hears of it', async (t) => {
  const fd = memfdCreate('guest', 64 * 1024);
  t.teardown(() => closeFd(fd));
  let heard = 0;
  const m = mmapFd(fd, 64 * 1024, 0, { onPoisoned: () => heard++ });
  const other = memfdCreate('other', 8192);
  t.teardown(() => closeFd(other));
  const keep = mmapFd(other, 8192, 0, { onPoisoned: () => t.fail('an untouched mapping must not be poisoned') });
  const view = new Uint8Array(m.buffer);
  view.fill(0xa5);
  new Uint8Array(keep.buffer).fill(0x3c);
  t.equal(m.poisoned, false);

  ftruncateSync(fd, 4096); // the peer shrinks the file: pages past 4 KiB are gone
  t.equal(view[60 * 1024], 0, 'reading a page past the new end returns zero instead of SIGBUS');
  view[50 * 1024] = 7; // and writing one does not fault either
  t.equal(view[50 * 1024], 7);
  t.equal(m.poisoned, true);
  t.equal(view[0], 0, 'the whole mapping was replaced, not only the faulting page');
  await tick();
  t.equal(heard, 1, 'onPoisoned ran once on the event loop');
  t.equal(keep.poisoned, false);
  t.ok(new Uint8Array(keep.buffer).every((b) => b === 0x3c), 'another mapping keeps its data');
  m.unmap();
  t.equal(m.poisoned, false, 'an unmapped region is not reported');
  keep.unmap();
});

t.test('a new mapping at a reused address starts clean', async (t) => {
  for (let i = 0; i < 3; i++) {
    const fd = memfdCreate('again', 16384);
    const m = mmapFd(fd, 16384, 0, { onPoisoned: () => {} });
    t.equal(m.poisoned, false);
    ftruncateSync(fd, 0);
    t.equal(new Uint8Array(m.buffer)[100], 0);
    t.equal(m.poisoned, true);
    m.unmap();
    closeFd(fd);
  }
});

t.test('a SIGBUS that is not ours still kills the process, as without the guard', async (t) => {
  // The built package (npm install / tsc -b builds it): the child needs no TypeScript loader.
  const pkg = resolve(__dirname, '..');
  const script = `
    const { memfdCreate, mmapFd } = require(${JSON.stringify(pkg)});
    mmapFd(memfdCreate('x', 4096), 4096, 0); // installs the handler
    process.kill(process.pid, 'SIGBUS');
    setTimeout(() => console.log('survived'), 200);
  `;
  const r = spawnSync(process.execPath, ['-e', script], { encoding: 'utf8', timeout: 30000 });
  t.equal(r.signal, 'SIGBUS', `child ended by SIGBUS (status ${r.status}, stderr ${r.stderr.slice(0, 300)})`);
  t.notMatch(r.stdout, /survived/);
});
