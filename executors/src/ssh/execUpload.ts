/**
 * Uploads for hosts whose sshd offers no SFTP subsystem (hardened hosts switch it off): the same
 * cache layout as upload.ts, over exec channels. One exec makes the folders and says whether this
 * runtime version is cached; a second streams a tar archive (the runtime when it is missing, the
 * script's code) into a temporary folder, which the host's own Python unpacks and renames into
 * place, so a lost connection or a concurrent run never leaves a half-written version behind.
 * Python does the unpacking because the host has it for certain (its workers are Python); `tar`
 * flavours differ.
 */
import type { Bundle, RuntimeBundle } from './upload';
import { COMPLETE_MARKER } from './upload';
import type { SshConnection } from './connection';
import { viaSh } from './remoteWorker';
import { shellPath, shellQuote } from './shellQuote';

/** argv: cache folder (as configured), runtime hash, run key. Prints one JSON line. */
const PREPARE = `
import json, os, sys
home = os.getcwd()
cache = os.path.join(home, os.path.expanduser(sys.argv[1]))
runtime = os.path.join(cache, "runtime")
run = os.path.join(cache, "runs", sys.argv[3])
os.makedirs(runtime, exist_ok=True)
os.makedirs(run, exist_ok=True)
print(json.dumps({"home": home, "cache": os.path.normpath(cache), "cached": os.path.isfile(os.path.join(runtime, sys.argv[2], ${JSON.stringify(COMPLETE_MARKER)}))}))
`;

/** argv: runtime root, runtime hash, run folder; stdin: a tar archive of runtime/... and code/... */
const UNPACK = `
import os, shutil, sys, tarfile, tempfile
root, digest, run = sys.argv[1:4]
final = os.path.join(root, digest)
marker = ${JSON.stringify(COMPLETE_MARKER)}
staging = tempfile.mkdtemp(prefix=".tmp-" + digest + "-", dir=root)
try:
    with tarfile.open(fileobj=sys.stdin.buffer, mode="r|") as archive:
        if hasattr(tarfile, "data_filter"):
            archive.extractall(staging, filter="data")
        else:
            archive.extractall(staging)
    staged = os.path.join(staging, "runtime")
    if os.path.isdir(staged):
        with open(os.path.join(staged, marker), "w") as done:
            done.write(digest + "\\n")
        if not os.path.isfile(os.path.join(final, marker)):
            shutil.rmtree(final, ignore_errors=True)
            try:
                os.rename(staged, final)
            except OSError:
                if not os.path.isfile(os.path.join(final, marker)):
                    raise
    code = os.path.join(staging, "code")
    if os.path.isdir(code):
        shutil.copytree(code, run, dirs_exist_ok=True)
finally:
    shutil.rmtree(staging, ignore_errors=True)
`;

export interface ExecUploadResult {
  readonly home: string;
  readonly cacheRoot: string;
  readonly runtimeDir: string;
  readonly runDir: string;
  readonly uploaded: boolean;
}

/** Thrown with the host's own last line of error output. */
export class ExecUploadError extends Error {}

export async function uploadOverExec(
  connection: SshConnection,
  options: { python: string; cacheDir: string; runKey: string; runtime: RuntimeBundle; code: Bundle | undefined },
): Promise<ExecUploadResult> {
  const python = options.python.includes('/') ? shellPath(options.python) : shellQuote(options.python);
  const run = async (script: string, args: readonly string[], stdin?: Buffer): Promise<string> => {
    const result = await connection.exec(viaSh(`exec ${python} -c ${shellQuote(script)} ${args.map(shellQuote).join(' ')}`), { timeoutMs: 120_000, ...(stdin ? { stdin } : {}) });
    if (result.code !== 0) {
      const why = result.stderr.trim().split('\n').pop() ?? '';
      throw new ExecUploadError(why || (result.signal ? `ended by ${result.signal}` : `exit code ${result.code}`));
    }
    return result.stdout;
  };
  const facts = JSON.parse((await run(PREPARE, [options.cacheDir, options.runtime.hash, options.runKey])).trim().split('\n').pop() ?? '') as {
    home: string;
    cache: string;
    cached: boolean;
  };
  const runtimeRoot = `${facts.cache}/runtime`;
  const runDir = `${facts.cache}/runs/${options.runKey}`;
  const files = [
    ...(facts.cached ? [] : options.runtime.files.map((f) => ({ path: `runtime/${f.path}`, data: f.data }))),
    ...(options.code?.files ?? []).map((f) => ({ path: `code/${f.path}`, data: f.data })),
  ];
  if (files.length > 0) await run(UNPACK, [runtimeRoot, options.runtime.hash, runDir], tarArchive(files));
  return { home: facts.home, cacheRoot: facts.cache, runtimeDir: `${runtimeRoot}/${options.runtime.hash}`, runDir, uploaded: !facts.cached };
}

// ---- ustar -----------------------------------------------------------------------------------

const BLOCK = 512;

/** A tar archive (POSIX ustar) of regular files, mode 0644; folders come from the paths. */
export function tarArchive(files: readonly { path: string; data: Buffer }[]): Buffer {
  const parts: Buffer[] = [];
  for (const file of files) {
    parts.push(header(file.path, file.data.length), file.data);
    const pad = (BLOCK - (file.data.length % BLOCK)) % BLOCK;
    if (pad > 0) parts.push(Buffer.alloc(pad));
  }
  parts.push(Buffer.alloc(BLOCK * 2));
  return Buffer.concat(parts);
}

function header(path: string, size: number): Buffer {
  const block = Buffer.alloc(BLOCK);
  const [prefix, name] = splitName(path);
  block.write(name, 0, 100, 'utf8');
  octal(block, 100, 8, 0o644);
  octal(block, 108, 8, 0);
  octal(block, 116, 8, 0);
  octal(block, 124, 12, size);
  octal(block, 136, 12, Math.floor(Date.now() / 1000));
  block.fill(' ', 148, 156); // the checksum counts its own field as spaces
  block.write('0', 156, 1, 'ascii');
  block.write('ustar\0', 257, 6, 'ascii');
  block.write('00', 263, 2, 'ascii');
  block.write(prefix, 345, 155, 'utf8');
  let sum = 0;
  for (const byte of block) sum += byte;
  block.write(`${sum.toString(8).padStart(6, '0')}\0 `, 148, 8, 'ascii');
  return block;
}

/** ustar keeps names of up to 100 bytes, with up to 155 more in a prefix split at a '/'. */
function splitName(path: string): [string, string] {
  if (Buffer.byteLength(path) <= 100) return ['', path];
  for (let at = path.indexOf('/'); at !== -1; at = path.indexOf('/', at + 1)) {
    const prefix = path.slice(0, at);
    const name = path.slice(at + 1);
    if (Buffer.byteLength(prefix) <= 155 && Buffer.byteLength(name) <= 100) return [prefix, name];
  }
  throw new ExecUploadError(`the path ${path} is too long to send without SFTP`);
}

function octal(block: Buffer, offset: number, length: number, value: number): void {
  block.write(`${value.toString(8).padStart(length - 1, '0')}\0`, offset, length, 'ascii');
}
