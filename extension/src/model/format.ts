/** Small text formats shared by the tree, the status bar and the CodeLens. */

export function formatLoss(loss: number | undefined): string {
  if (loss === undefined) return '';
  if (Number.isNaN(loss)) return 'NaN';
  if (!Number.isFinite(loss)) return loss > 0 ? '∞' : '-∞';
  const abs = Math.abs(loss);
  if (abs !== 0 && (abs < 1e-3 || abs >= 1e6)) return loss.toExponential(3);
  return Number(loss.toPrecision(5)).toString();
}

export function formatDuration(ms: number | undefined): string {
  if (ms === undefined || !Number.isFinite(ms) || ms < 0) return '';
  // Rounded to what is shown before it is split, so 359.6 s is 6m00s and not 5m60s.
  const tenths = Math.round(ms / 100);
  if (tenths < 100) return `${(tenths / 10).toFixed(1)}s`;
  const s = Math.round(ms / 1000);
  if (s < 60) return `${s}s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m}m${String(s % 60).padStart(2, '0')}s`;
  const minutes = Math.round(s / 60);
  return `${Math.floor(minutes / 60)}h${String(minutes % 60).padStart(2, '0')}m`;
}

export function basename(path: string): string {
  return path.split(/[\\/]/).pop() ?? path;
}

const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];

/**
 * When something started, as short as tells it apart from its neighbours in a list: `14:32`
 * today, `Dec 2 14:32` this year, `2025-12-02 14:32` before (local time).
 */
export function formatStartTime(ms: number | undefined, now: number = Date.now()): string {
  if (ms === undefined || !Number.isFinite(ms)) return '';
  const at = new Date(ms);
  const today = new Date(now);
  const pad = (n: number): string => String(n).padStart(2, '0');
  const clock = `${pad(at.getHours())}:${pad(at.getMinutes())}`;
  if (at.getFullYear() !== today.getFullYear()) return `${at.getFullYear()}-${pad(at.getMonth() + 1)}-${pad(at.getDate())} ${clock}`;
  if (at.getMonth() !== today.getMonth() || at.getDate() !== today.getDate()) return `${MONTHS[at.getMonth()]} ${at.getDate()} ${clock}`;
  return clock;
}
