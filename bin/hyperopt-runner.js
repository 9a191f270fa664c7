#!/usr/bin/env node
'use strict';
const path = require('node:path');
const fs = require('node:fs');
const bundle = path.join(__dirname, '..', 'dist', 'cli.js');
if (!fs.existsSync(bundle)) {
  process.stderr.write('hyperopt-runner: dist/cli.js is missing; run `npm run build` (or scripts/setup.sh) first.\n');
  process.exit(2);
}
require(bundle);
