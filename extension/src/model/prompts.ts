/**
 * The editor's side of the service's questions (control protocol `prompt`): SSH key passphrases
 * from the editor's secret storage or a password input box, and unknown host keys in a modal
 * warning. vscode-free: the window, the secret storage and the list of remembered keys come in as
 * small interfaces (the controller passes the real ones, the unit tests fakes).
 */
import type { Answer, PromptClosedMessage, PromptMessage, Question } from '../../../core/src/protocol/control';

/** Secret storage key of a remembered passphrase: the prefix and the key file's absolute path. */
export const PASSPHRASE_SECRET_PREFIX = 'hyperoptRunner.sshPassphrase:';
export const TRUST_AND_CONNECT = 'Trust and Connect';
export const REMEMBER = 'Remember';

export interface SecretStore {
  get(key: string): PromiseLike<string | undefined>;
  store(key: string, value: string): PromiseLike<void>;
  delete(key: string): PromiseLike<void>;
}

/** Which key files have a remembered passphrase (secret storage cannot list its keys). */
export interface RememberedKeys {
  get(): readonly string[];
  set(paths: readonly string[]): PromiseLike<void>;
}

export interface PromptWindow {
  /** A password input box that stays open when focus moves; closed when `signal` aborts. */
  passwordBox(options: { title: string; prompt: string }, signal: AbortSignal): PromiseLike<string | undefined>;
  /** A modal warning; resolves with the chosen item, undefined for Cancel. */
  modalWarning(message: string, detail: string, ...items: string[]): PromiseLike<string | undefined>;
  /** A plain notification with buttons. */
  information(message: string, ...items: string[]): PromiseLike<string | undefined>;
}

export interface PromptDeps {
  readonly window: PromptWindow;
  readonly secrets: SecretStore;
  readonly remembered: RememberedKeys;
  /** Sends the answer to the service. */
  readonly answer: (prompt: string, answer: Answer) => Promise<unknown>;
  readonly log: (line: string) => void;
}

export class EditorPrompts {
  private readonly open = new Map<string, AbortController>();
  /** Passphrases offered for remembering, by key path, until the service says they were wrong. */
  private readonly offered = new Map<string, string>();

  constructor(private readonly deps: PromptDeps) {}

  /** Answers one prompt; resolves when the answer is sent and any offer to remember is settled. */
  async handle(message: PromptMessage): Promise<void> {
    const abort = new AbortController();
    this.open.set(message.prompt, abort);
    let answer: Answer;
    let afterwards: (() => Promise<void>) | undefined;
    try {
      ({ answer, afterwards } = await this.answerFor(message.question, abort.signal));
    } finally {
      this.open.delete(message.prompt);
    }
    if (abort.signal.aborted) {
      this.deps.log(`prompt ${message.prompt} closed before it was answered`);
      return;
    }
    try {
      await this.deps.answer(message.prompt, answer);
    } catch (error) {
      this.deps.log(`the answer to prompt ${message.prompt} came too late: ${error instanceof Error ? error.message : String(error)}`);
      return;
    }
    await afterwards?.();
  }

  /** The service closed a prompt (timeout, the run stopped): its input box goes away. */
  closed(message: PromptClosedMessage): void {
    this.open.get(message.prompt)?.abort();
  }

  /** Deletes every remembered passphrase; resolves with how many there were. */
  async forgetAll(): Promise<number> {
    const paths = [...this.deps.remembered.get()];
    for (const path of paths) await this.deps.secrets.delete(secretKey(path));
    await this.deps.remembered.set([]);
    this.offered.clear();
    return paths.length;
  }

  private async answerFor(question: Question, signal: AbortSignal): Promise<{ answer: Answer; afterwards?: () => Promise<void> }> {
    if (question.kind === 'hostKey') {
      const choice = await this.deps.window.modalWarning(
        `Unknown SSH host key for ${question.host}`,
        `${question.keyType} key fingerprint ${question.fingerprint}.\n\nThis host is not in ${question.file} yet. Check the fingerprint with the host's owner: trusting it records the key there, and a different key later is refused.`,
        TRUST_AND_CONNECT,
      );
      return { answer: { kind: 'hostKey', trust: choice === TRUST_AND_CONNECT } };
    }
    const { keyPath, host, retry } = question;
    if (retry) {
      // The last answer (stored or typed) did not decrypt the key.
      this.offered.delete(keyPath);
      await this.forget(keyPath);
    } else {
      const stored = await this.deps.secrets.get(secretKey(keyPath));
      if (stored !== undefined) return { answer: { kind: 'sshPassphrase', passphrase: stored } };
    }
    const typed = await this.deps.window.passwordBox(
      {
        title: 'SSH key passphrase',
        prompt: `${retry ? 'Wrong passphrase. ' : ''}Passphrase for ${keyPath} (to reach ${host})`,
      },
      signal,
    );
    if (typed === undefined) return { answer: { kind: 'sshPassphrase', passphrase: null } };
    this.offered.set(keyPath, typed);
    return {
      answer: { kind: 'sshPassphrase', passphrase: typed },
      afterwards: async () => {
        const choice = await this.deps.window.information(`Remember the passphrase of ${keyPath} in the editor's secret storage?`, REMEMBER, 'Not Now');
        // Not when the service said meanwhile that it was wrong.
        if (choice !== REMEMBER || this.offered.get(keyPath) !== typed) return;
        this.offered.delete(keyPath);
        await this.deps.secrets.store(secretKey(keyPath), typed);
        const paths = this.deps.remembered.get();
        if (!paths.includes(keyPath)) await this.deps.remembered.set([...paths, keyPath]);
      },
    };
  }

  private async forget(keyPath: string): Promise<void> {
    await this.deps.secrets.delete(secretKey(keyPath));
    const paths = this.deps.remembered.get();
    if (paths.includes(keyPath)) await this.deps.remembered.set(paths.filter((p) => p !== keyPath));
  }
}

export function secretKey(keyPath: string): string {
  return `${PASSPHRASE_SECRET_PREFIX}${keyPath}`;
}
