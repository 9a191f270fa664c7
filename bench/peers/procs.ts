/**
 * The processes of one benchmark run, found in /proc: every process whose environment carries
 * the run's tag (the tag is inherited by the CLI, the script, the JVM, Ray's daemons and every
 * worker), plus, for the SSH runner, every descendant of the loopback sshd servers (remote
 * workers get no environment from us). Each process gets a role from its command line, and the
 * watch keeps per-role memory peaks while the run lasts: at each sample, the sum of the peak RSS
 * (VmHWM, which the kernel keeps exact between samples) of the role's live processes; the
 * largest such sum is the role's peak. Short-lived helpers that never overlap are not added up.
 */
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';

export type Role = 'driver' | 'coordinator' | 'workers';

export interface MemoryPeaks {
  /** Peak RSS (VmHWM) of the process that runs the user's script, MB. */
  driverMb: number | null;
  /** The coordinating processes (CLI, JVM, Ray's daemons): peak RSS summed over those alive together, MB. */
  coordinatorMb: number | null;
  /** The trial processes, the same way, MB. */
  workersMb: number | null;
  /** Command names of the coordinating processes. */
  coordinatorProcesses: string[];
}

interface Seen {
  tagged: boolean;
  role?: Role;
  name?: string;
  hwmKb?: number;
}

function readStat(pid: number): { ppid: number; state: string; start: string } | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const after = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return { state: after[0]!, ppid: Number(after[1]), start: after[19]! };
  } catch {
    return undefined;
  }
}

function cmdline(pid: number): string {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').replace(/\0/g, ' ').trim();
  } catch {
    return '';
  }
}

function memoryKb(pid: number): { rss: number; hwm: number } | undefined {
  try {
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    const rss = /VmRSS:\s+(\d+)/.exec(status);
    const hwm = /VmHWM:\s+(\d+)/.exec(status);
    if (!rss || !hwm) return undefined;
    return { rss: Number(rss[1]), hwm: Number(hwm[1]) };
  } catch {
    return undefined;
  }
}

export function roleOf(command: string, remote: boolean): Role {
  if (remote || command.startsWith('ray::')) return 'workers';
  const words = command.split(' ');
  if (!(words[0]?.split('/').pop() ?? '').startsWith('python')) return 'coordinator';
  const module = words[words.indexOf('-m') + 1];
  const script = words.slice(1).find((w) => !w.startsWith('-'))?.split('/').pop();
  const target = words.includes('-m') ? module : script;
  // The fork servers (ours, Spark's daemon) are the workers' warm template: their pages are the workers'.
  if (target === 'hyperopt_runner.worker' || target === 'hyperopt_runner.forkserver' || target === 'pyspark.daemon' || target === 'pyspark.worker' || target === 'default_worker.py') return 'workers';
  if (target === 'hyperopt_runner.launch' || target === 'workload.py') return 'driver';
  return 'coordinator';
}

function shortName(command: string): string {
  const first = command.split(' ')[0] ?? '';
  const base = first.split('/').pop() ?? first;
  if (base.startsWith('python')) {
    const words = command.split(' ');
    if (words.includes('-c')) return 'python -c';
    const module = words.includes('-m') ? words[words.indexOf('-m') + 1] : undefined;
    const script = words.find((part) => part.endsWith('.py'));
    return `python ${module ?? script?.split('/').pop() ?? ''}`.trim();
  }
  return base;
}

export class ProcessWatch {
  private readonly seen = new Map<string, Seen>();
  private readonly live = new Map<number, { key: string; remote: boolean }>();
  /** Per role: the largest sum, over the processes alive at one sample, of their peak RSS. */
  private readonly peakKb: Record<Role, number> = { driver: 0, coordinator: 0, workers: 0 };
  private readonly names = new Set<string>();
  private timer: NodeJS.Timeout | undefined;

  /**
   * @param tag the run's HR_BENCH_TAG value
   * @param remoteRoots pids whose descendants belong to the run (the loopback sshd servers)
   */
  constructor(
    private readonly tag: string,
    private readonly remoteRoots: number[] = [],
  ) {}

  start(intervalMs = 100): void {
    this.scan();
    this.timer = setInterval(() => this.scan(), intervalMs);
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    this.scan();
  }

  /** One pass over /proc: new processes are checked for the tag, live ones are measured. */
  scan(): void {
    const entries = readdirSync('/proc').filter((e) => /^\d+$/.test(e)).map(Number);
    const stats = new Map<number, { ppid: number; state: string; start: string }>();
    if (this.remoteRoots.length > 0) {
      for (const pid of entries) {
        const stat = readStat(pid);
        if (stat) stats.set(pid, stat);
      }
    }
    const remote = new Set<number>();
    if (this.remoteRoots.length > 0) {
      const children = new Map<number, number[]>();
      for (const [pid, stat] of stats) children.set(stat.ppid, [...(children.get(stat.ppid) ?? []), pid]);
      const queue = [...this.remoteRoots];
      while (queue.length > 0) {
        for (const child of children.get(queue.shift()!) ?? []) {
          if (!remote.has(child)) {
            remote.add(child);
            queue.push(child);
          }
        }
      }
    }
    this.live.clear();
    const sampleKb: Record<Role, number> = { driver: 0, coordinator: 0, workers: 0 };
    for (const pid of entries) {
      const stat = stats.get(pid) ?? readStat(pid);
      if (!stat || stat.state === 'Z') continue;
      const key = `${pid}:${stat.start}`;
      let seen = this.seen.get(key);
      if (!seen) {
        let tagged = false;
        try {
          tagged = readFileSync(`/proc/${pid}/environ`, 'latin1').split('\0').includes(`HR_BENCH_TAG=${this.tag}`);
        } catch {
          // Gone, or not ours to read.
        }
        seen = { tagged };
        this.seen.set(key, seen);
      }
      const isRemote = remote.has(pid);
      if (!seen.tagged && !isRemote) continue;
      this.live.set(pid, { key, remote: isRemote });
      const command = cmdline(pid);
      if (command) {
        const name = shortName(command);
        // A forked child shows its parent's command until it execs; its peak starts again there.
        if (seen.name !== undefined && seen.name !== name) seen.hwmKb = undefined;
        seen.role = roleOf(command, isRemote);
        seen.name = name;
      }
      const memory = memoryKb(pid);
      if (memory && seen.role) {
        seen.hwmKb = Math.max(seen.hwmKb ?? 0, memory.hwm);
        sampleKb[seen.role] += seen.hwmKb;
        if (seen.role === 'coordinator' && seen.name) this.names.add(seen.name);
      }
    }
    for (const role of ['driver', 'coordinator', 'workers'] as const) this.peakKb[role] = Math.max(this.peakKb[role], sampleKb[role]);
  }

  /** Live processes of the run (as of the last scan, re-checked now). */
  livePids(): number[] {
    return [...this.live.entries()].filter(([pid, { key }]) => {
      const stat = readStat(pid);
      return stat !== undefined && stat.state !== 'Z' && `${pid}:${stat.start}` === key;
    }).map(([pid]) => pid);
  }

  describe(pids: number[]): string[] {
    return pids.map((pid) => `${pid} ${cmdline(pid).slice(0, 120)}`);
  }

  /**
   * Starts the peaks again, for the next study in the same process: each live process's VmHWM is
   * set back to its current RSS (`clear_refs` 5), so a peak reached in an earlier study does not
   * count; where the kernel refuses, that process keeps its earlier peak.
   */
  resetPeaks(): void {
    this.scan();
    for (const [pid, { key }] of this.live) {
      try {
        writeFileSync(`/proc/${pid}/clear_refs`, '5');
      } catch {
        // Gone, or not ours to reset.
      }
      const seen = this.seen.get(key);
      if (seen) seen.hwmKb = undefined;
    }
    for (const role of ['driver', 'coordinator', 'workers'] as const) this.peakKb[role] = 0;
    this.names.clear();
    this.scan();
  }

  peaks(): MemoryPeaks {
    const mb = (role: Role): number | null => (this.peakKb[role] > 0 ? this.peakKb[role] / 1024 : null);
    return {
      driverMb: mb('driver'),
      coordinatorMb: mb('coordinator'),
      workersMb: mb('workers'),
      coordinatorProcesses: [...this.names].sort(),
    };
  }
}
