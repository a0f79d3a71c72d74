import type { BlockworkConfig } from '@blockwork/core';

/** What `blockwork start` runs without --config: one 64 MiB malloc bdev, so the quick start has something to list. */
export const DEFAULT_CONFIG: BlockworkConfig = {
  subsystems: [
    {
      subsystem: 'bdev',
      config: [
        { method: 'bdev_malloc_create', params: { name: 'Malloc0', num_blocks: 131072, block_size: 512 } },
        { method: 'bdev_wait_for_examine' },
      ],
    },
  ],
};
