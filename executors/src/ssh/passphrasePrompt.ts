/**
 * Asking for a key's passphrase in the terminal (echo off), once per key file, one prompt at a
 * time. Used only when stdin and stderr are a terminal; elsewhere the passphrase comes from an
 * environment variable, the agent or the editor's secret storage.
 */
const answers = new Map<string, Promise<string | undefined>>();
let queue: Promise<unknown> = Promise.resolve();

function ask(question: string): Promise<string | undefined> {
  return new Promise((resolve) => {
    const stdin = process.stdin;
    process.stderr.write(question);
    const wasRaw = stdin.isRaw;
    stdin.setRawMode(true);
    stdin.setEncoding('utf8');
    stdin.resume();
    let text = '';
    const finish = (value: string | undefined): void => {
      stdin.off('data', onData);
      stdin.setRawMode(wasRaw);
      stdin.pause();
      process.stderr.write('\n');
      resolve(value);
    };
    const onData = (chunk: string): void => {
      for (const ch of chunk) {
        if (ch === '\r' || ch === '\n') return finish(text);
        if (ch === '\u0003' || ch === '\u0004') return finish(undefined);
        if (ch === '\u007f' || ch === '\b') text = text.slice(0, -1);
        else text += ch;
      }
    };
    stdin.on('data', onData);
  });
}

export function terminalPassphrase(keyPath: string, host: string, options?: { retry: boolean }): Promise<string | undefined> {
  if (!process.stdin.isTTY || !process.stderr.isTTY) return Promise.resolve(undefined);
  // The previous answer did not decrypt the key: ask again instead of replaying it.
  if (options?.retry) answers.delete(keyPath);
  let answer = answers.get(keyPath);
  if (!answer) {
    const wrong = options?.retry ? 'wrong passphrase; ' : '';
    answer = queue.then(() => ask(`hyperopt-runner: ${wrong}passphrase for ${keyPath} (to reach ${host}): `));
    queue = answer.catch(() => undefined);
    answers.set(keyPath, answer);
  }
  return answer;
}
