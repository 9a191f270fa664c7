// Fails when a command declared in package.json is never registered by the extension, or the
// reverse; also checks that every declared command has a category and a localized title, and
// that menus only name declared commands.
//   node scripts/check-commands.mjs
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

const root = join(import.meta.dirname, '..');
const manifest = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8'));
const nls = JSON.parse(readFileSync(join(root, 'package.nls.json'), 'utf8'));
// The extension registers exactly the ids of commandIds.ts (commands.ts maps each to a handler,
// and TypeScript requires one handler per id).
const source = readFileSync(join(root, 'extension/src/commandIds.ts'), 'utf8');
const registered = new Set([...source.matchAll(/:\s*'(hyperoptRunner\.[A-Za-z]+)'/g)].map((m) => m[1]));
const handlers = readFileSync(join(root, 'extension/src/commands.ts'), 'utf8');
const handled = new Set([...handlers.matchAll(/\[COMMANDS\.([A-Za-z]+)\]:/g)].map((m) => `hyperoptRunner.${m[1]}`));

const commands = manifest.contributes?.commands ?? [];
const declared = new Set(commands.map((c) => c.command));
const problems = [];
for (const id of declared) if (!registered.has(id)) problems.push(`${id} is declared in package.json but never registered`);
for (const id of registered) if (!declared.has(id)) problems.push(`${id} is registered but not declared in package.json`);
for (const id of registered) if (!handled.has(id)) problems.push(`${id} has no handler in extension/src/commands.ts`);
for (const c of commands) {
  if (!c.category) problems.push(`${c.command} has no category`);
  const key = /^%(.+)%$/.exec(c.title ?? '')?.[1];
  if (!key) problems.push(`${c.command}: its title is not localized (%key%)`);
  else if (!(key in nls)) problems.push(`${c.command}: package.nls.json has no '${key}'`);
}
for (const [menu, items] of Object.entries(manifest.contributes?.menus ?? {})) {
  for (const item of items) if (item.command && !declared.has(item.command)) problems.push(`menu ${menu} names undeclared ${item.command}`);
}
for (const [key, value] of Object.entries(manifest)) {
  if (typeof value === 'string' && /^%.+%$/.test(value) && !(value.slice(1, -1) in nls)) problems.push(`package.json ${key}: no '${value}' in package.nls.json`);
}
for (const problem of problems) console.log(`not ok - ${problem}`);
console.log(`${declared.size} declared, ${registered.size} registered, ${problems.length} problem(s)`);
console.log(problems.length === 0 ? '1 passed, 0 failed' : '0 passed, 1 failed');
process.exitCode = problems.length === 0 ? 0 : 1;
