import t from 'tap';
import { requireGuestTools } from '@blockwork/guest-vm';
import { guestOnKind, KINDS } from './fixtures/guest-check';

// One guest boot per file: under load a boot with fio takes 60–80 s, so each kind gets its own file timeout.
t.test(`a QEMU guest on a ${KINDS.uring.name} bdev`, async (t) => {
  if (!requireGuestTools(t)) return;
  await guestOnKind(t, KINDS.uring);
});
