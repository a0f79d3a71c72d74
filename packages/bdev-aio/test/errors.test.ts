import { Errno, isBlockworkError } from '@blockwork/core';
import t from 'tap';
import { AIO_ERRORS, aioError } from '../src/errors';

t.test('codes are upper-snake with the AIO_ prefix and map to an errno', async (t) => {
  for (const [code, e] of Object.entries(AIO_ERRORS)) {
    t.match(code, /^AIO_[A-Z_]+$/);
    t.ok(Number.isInteger(e.errno) && e.errno > 0, `${code} has an errno`);
  }
});

t.test('aioError carries code, default or given errno, and cause', async (t) => {
  const cause = new Error('inner');
  const a = aioError('AIO_FILE_NOT_FOUND', '/x does not exist');
  t.ok(isBlockworkError(a));
  t.equal(a.code, 'AIO_FILE_NOT_FOUND');
  t.equal(a.errno, Errno.ENOENT);
  const b = aioError('AIO_NOT_WRITABLE', '/y', { errno: Errno.EROFS, cause });
  t.equal(b.errno, Errno.EROFS);
  t.equal(b.cause, cause);
});
