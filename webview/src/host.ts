/**
 * The webview's side of the channel: VS Code's `acquireVsCodeApi()` behind a typed wrapper.
 * Every message from the host is validated (`parseHostToWebview`) before anyone sees it; what
 * does not parse is dropped, logged to the console and reported to the host as `rejected`.
 */
import {
  type ControlRequest,
  type HostToWebview,
  type PersistedWebviewState,
  PersistedWebviewState as PersistedSchema,
  type ReplyMessage,
  type WebviewToHost,
  WEBVIEW_PROTOCOL_VERSION,
  claimedType,
  parseHostToWebview,
} from '../../core/src/protocol/webview';

interface VsCodeApi {
  postMessage(message: unknown): void;
  getState(): unknown;
  setState(state: unknown): void;
}

declare function acquireVsCodeApi(): VsCodeApi;

/** How long a control request waits for the host's reply before it is reported as unanswered. */
export const REPLY_TIMEOUT_MS = 15_000;

export interface Pending {
  request: ControlRequest;
  resolve(reply: { ok: boolean; error?: string }): void;
}

export class Host {
  private readonly api: VsCodeApi;
  private readonly pending = new Map<string, Pending & { timer: number }>();
  private readonly session = Math.random().toString(36).slice(2, 10);
  private counter = 0;
  /** Messages dropped because they did not parse (shown in the page for people and tests). */
  rejectedCount = 0;

  constructor(private readonly onMessage: (message: HostToWebview) => void) {
    this.api = acquireVsCodeApi();
  }

  /** Starts listening, then says ready: the host holds its messages until then. */
  start(): void {
    window.addEventListener('message', (event: MessageEvent<unknown>) => this.receive(event.data));
    this.post({ type: 'ready', protocol: WEBVIEW_PROTOCOL_VERSION });
  }

  post(message: WebviewToHost): void {
    this.api.postMessage(message);
  }

  /** Sends a control request; resolves with the host's reply (or a timeout). */
  control(request: ControlRequest): Promise<{ ok: boolean; error?: string }> {
    this.counter += 1;
    const id = `${this.session}-${this.counter}`;
    return new Promise((resolve) => {
      const timer = window.setTimeout(() => {
        this.pending.delete(id);
        resolve({ ok: false, error: 'No answer from the extension.' });
      }, REPLY_TIMEOUT_MS);
      this.pending.set(id, { request, resolve, timer });
      this.post({ type: 'control', id, request });
    });
  }

  loadState(): PersistedWebviewState | undefined {
    const parsed = PersistedSchema.safeParse(this.api.getState());
    return parsed.success ? parsed.data : undefined;
  }

  saveState(state: PersistedWebviewState): void {
    this.api.setState(state);
  }

  private receive(raw: unknown): void {
    const t0 = performance.now();
    const parsed = parseHostToWebview(raw);
    // For the benchmark: how long checking a study's whole trials took.
    if (parsed.ok && parsed.message.type === 'init') performance.measure('trials:init-checked', { start: t0 });
    if (!parsed.ok) {
      this.rejectedCount += 1;
      document.body.dataset.rejectedMessages = String(this.rejectedCount);
      console.warn(`[trials] dropped a message from the extension: ${parsed.error}`);
      const messageType = claimedType(raw);
      this.post({ type: 'rejected', error: parsed.error, ...(messageType !== undefined ? { messageType } : {}) });
      return;
    }
    if (parsed.message.type === 'reply') {
      this.settle(parsed.message);
      return;
    }
    this.onMessage(parsed.message);
  }

  private settle(reply: ReplyMessage): void {
    const pending = this.pending.get(reply.id);
    if (!pending) return;
    this.pending.delete(reply.id);
    window.clearTimeout(pending.timer);
    pending.resolve({ ok: reply.ok, ...(reply.error !== undefined ? { error: reply.error } : {}) });
  }
}
