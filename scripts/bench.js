'use strict';
// npm run bench [bdev-layer|file]: runs the compiled benchmarks (tsc -b ran first).
require('../packages/cli/dist/bench/main.js');
