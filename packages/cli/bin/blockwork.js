#!/usr/bin/env node
'use strict';
// Kept as plain JS outside dist/ so npm can link the bin before `tsc -b` has run.
require('../dist/src/main.js').main(process.argv.slice(2));
