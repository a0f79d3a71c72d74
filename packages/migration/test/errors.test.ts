import t from 'tap';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { MIGRATION_ERRORS, migrationError } from '../src/errors';

t.test('every catalogue code is documented in docs/migration.md', async (t) => {
  const page = readFileSync(join(__dirname, '..', '..', '..', 'docs', 'migration.md'), 'utf8');
  for (const code of Object.keys(MIGRATION_ERRORS)) t.match(page, `\`${code}\``, `${code} documented`);
});

t.test('migrationError carries code, default or given errno, and cause', async (t) => {
  const cause = new Error('x');
  t.match(migrationError('MIGRATION_BITMAP_IO', 'm', { errno: 13, cause }), { code: 'MIGRATION_BITMAP_IO', errno: 13, message: 'm', cause });
  t.equal(migrationError('MIGRATION_TARGET_TOO_SMALL', 'm').errno, 28);
});
