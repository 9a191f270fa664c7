/**
 * Questions the background service asks an attached editor: an SSH key's passphrase, whether to
 * trust an unknown host key. Each prompt has an id the editor's `answer` names, a deadline (a prompt
 * nobody answers must not hold a study forever) and the run's AbortSignal (stopping the run closes
 * it). Asking with no editor attached resolves to `undefined` at once: the caller then fails as
 * the command line does, with its one-line error.
 */
import type { Answer, AnswerTo, PromptMessage, Question } from '../protocol/control';

export const DEFAULT_PROMPT_TIMEOUT_MS = 5 * 60_000;

/** Where prompts go: the service picks a connected editor and writes to it. */
export interface PromptTransport<Target> {
  /** The editor to ask for `run` (the one that started it when it is still there), if any. */
  target(run: string): Target | undefined;
  send(target: Target, message: PromptMessage | { type: 'promptClosed'; prompt: string; reason: 'timeout' | 'cancelled' }): void;
}

interface OpenPrompt<Target> {
  readonly target: Target;
  readonly question: Question;
  settle(answer: Answer | undefined, error?: Error): void;
}

export class PromptBroker<Target> {
  private seq = 0;
  private readonly open = new Map<string, OpenPrompt<Target>>();

  constructor(
    private readonly transport: PromptTransport<Target>,
    private readonly timeoutMs = DEFAULT_PROMPT_TIMEOUT_MS,
  ) {}

  /**
   * Asks the run's editor. Resolves with its answer, or `undefined` when no editor is attached or
   * the one asked went away; rejects with a one-line reason on timeout or when `signal` aborts.
   */
  ask<Q extends Question>(run: string, question: Q, signal?: AbortSignal): Promise<AnswerTo<Q> | undefined> {
    const target = this.transport.target(run);
    if (target === undefined) return Promise.resolve(undefined);
    if (signal?.aborted) return Promise.reject(new Error(`the run was stopped before ${what(question)} was answered`));
    const prompt = `p${++this.seq}`;
    return new Promise<AnswerTo<Q> | undefined>((resolve, reject) => {
      const timer = setTimeout(() => close('timeout', new Error(`no answer to ${what(question)} within ${Math.round(this.timeoutMs / 1000)} s`)), this.timeoutMs);
      const onAbort = (): void => close('cancelled', new Error(`the run was stopped while ${what(question)} was open`));
      signal?.addEventListener('abort', onAbort, { once: true });
      const close = (reason: 'timeout' | 'cancelled', error: Error): void => {
        if (!this.open.has(prompt)) return;
        this.transport.send(target, { type: 'promptClosed', prompt, reason });
        this.open.get(prompt)!.settle(undefined, error);
      };
      this.open.set(prompt, {
        target,
        question,
        settle: (answer, error) => {
          this.open.delete(prompt);
          clearTimeout(timer);
          signal?.removeEventListener('abort', onAbort);
          if (error) reject(error);
          else resolve(answer as AnswerTo<Q> | undefined);
        },
      });
      this.transport.send(target, { type: 'prompt', prompt, run, timeoutMs: this.timeoutMs, question });
    });
  }

  /** An editor's answer; false when the prompt is unknown, closed, or asked of another editor or about something else. */
  answer(from: Target, prompt: string, answer: Answer): boolean {
    const open = this.open.get(prompt);
    if (!open || open.target !== from || open.question.kind !== answer.kind) return false;
    open.settle(answer);
    return true;
  }

  /** The editor went away: its open prompts resolve to `undefined` (nobody to ask). */
  detach(target: Target): void {
    for (const open of [...this.open.values()]) if (open.target === target) open.settle(undefined);
  }

  get pending(): number {
    return this.open.size;
  }
}

function what(question: Question): string {
  return question.kind === 'sshPassphrase' ? `the passphrase prompt for ${question.keyPath}` : `the host key prompt for ${question.host}`;
}
