/**
 * POSIX shell quoting for the commands sent to remote hosts. An SSH "exec" request carries one
 * string that the remote login shell parses, so every value that comes from a user, a file or
 * a host (paths, environment values, interpreter names) goes through `shellQuote` first.
 */

/** Characters that never need quoting in any position of a POSIX shell word. */
const PLAIN = /^[A-Za-z0-9_@%+,./:-]+$/;

/** Names a POSIX shell accepts for environment variables. */
const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

/**
 * One shell word that stands for exactly `value`: plain words stay as they are, anything else
 * is put in single quotes, with each embedded single quote written as '\''.
 */
export function shellQuote(value: string): string {
  if (value.includes('\0')) throw new Error('a shell argument cannot contain a NUL character');
  if (value === '') return "''";
  if (PLAIN.test(value)) return value;
  return `'${value.replace(/'/g, `'\\''`)}'`;
}

/** An argument vector as one command line. */
export function shellJoin(argv: readonly string[]): string {
  return argv.map(shellQuote).join(' ');
}

export function isEnvName(name: string): boolean {
  return ENV_NAME.test(name);
}

/** `NAME=value` as one word for `env`; the name must be a valid variable name. */
export function envWord(name: string, value: string): string {
  if (!isEnvName(name)) throw new Error(`invalid environment variable name ${JSON.stringify(name)}`);
  return shellQuote(`${name}=${value}`);
}

/**
 * A remote path as a shell word. `~` and `~/rest` become "$HOME"/rest, with the rest quoted,
 * so the remote shell expands the home directory and nothing else.
 */
export function shellPath(path: string): string {
  if (path === '~') return '"$HOME"';
  if (path.startsWith('~/')) return `"$HOME"/${shellQuote(path.slice(2))}`;
  return shellQuote(path);
}
