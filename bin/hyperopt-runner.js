#!/usr/bin/env -S node --max-semi-space-size=8
'use strict';
// The semi-space cap: a long study allocates many short-lived messages, and at V8's default cap
// (16 MB) the young generation alone grows to 48 MB; at 8 MB the coordinator of a 10,000-trial
// study peaks about 10 MB lower at the same trial rate (docs/benchmarks.md, Engine).
// Loads the CLI bundle with V8's code cache beside it (dist/cli.js.cache): compiling the bundle
// is a tenth of a second of every command's start, and the cache makes it a few milliseconds. The
// cache is written after a command that had none (or whose cache V8 refused: another Node); its name
// carries the bundle's size and modification time, because V8 checks only the source's length and a
// rebuilt bundle of the same length must not run an old bundle's code. Where dist/ is not writable,
// commands run without one.
const path = require('node:path');
const fs = require('node:fs');
const vm = require('node:vm');
const Module = require('node:module');

const bundle = path.join(__dirname, '..', 'dist', 'cli.js');
if (!fs.existsSync(bundle)) {
  process.stderr.write('hyperopt-runner: dist/cli.js is missing; run `npm run build` (or scripts/setup.sh) first.\n');
  process.exit(2);
}
const stat = fs.statSync(bundle);
const cachePath = path.join(path.dirname(bundle), `cli.js.${stat.size}-${Math.floor(stat.mtimeMs)}.cache`);
let cachedData;
try {
  cachedData = fs.readFileSync(cachePath);
} catch {
  // no cache yet
}
const script = new vm.Script(Module.wrap(fs.readFileSync(bundle, 'utf8')), { filename: bundle, cachedData });
if (cachedData === undefined || script.cachedDataRejected) {
  // At exit, so the cache holds the functions this command compiled too.
  process.once('exit', () => {
    const temporary = `${cachePath}.${process.pid}.tmp`;
    try {
      fs.writeFileSync(temporary, script.createCachedData());
      fs.renameSync(temporary, cachePath);
      for (const name of fs.readdirSync(path.dirname(bundle))) {
        const old = path.join(path.dirname(bundle), name);
        if (/^cli\.js\..*\.cache$/.test(name) && old !== cachePath) fs.rmSync(old, { force: true });
      }
    } catch {
      fs.rmSync(temporary, { force: true });
    }
  });
}
const loaded = new Module(bundle, module);
loaded.filename = bundle;
script.runInThisContext().call(loaded.exports, loaded.exports, Module.createRequire(bundle), loaded, bundle, path.dirname(bundle));
