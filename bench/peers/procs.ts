/**
 * The processes of one benchmark run, found in /proc: every process whose environment carries
 * the run's tag (the tag is inherited by the CLI, the script, the JVM, Ray's daemons and every
 * worker), plus, for the SSH runner, every descendant of the loopback sshd servers (remote
 * workers get no environment from us). Each process gets a role from its command line, and the
 * watch keeps per-role memory peaks while the run lasts.
 */
import { readdirSync, readFileSync } from 'node:fs';

export type Role = 'driver' | 'coordinator' | 'workers';

export interface MemoryPeaks {
  /** Peak RSS (VmHWM) of the process that runs the user's script, MB. */
  driverMb: number | null;
  /** Sum of the peak RSS (VmHWM) of the coordinating processes (CLI, JVM, Ray's daemons), MB. */
  coordinatorMb: number | null;
  /** Largest sum of the workers' RSS seen at one sample, MB. */
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
  if (remote) return 'workers';
  if (/hyperopt_runner\.worker|pyspark[./]daemon|pyspark[./]worker|default_worker\.py|^ray::/.test(command)) return 'workers';
  if (/workload\.py/.test(command) && !/^node |^timeout /.test(command) && !command.includes('hyperopt-runner.js')) return 'driver';
  return 'coordinator';
}

function shortName(command: string): string {
  const first = command.split(' ')[0] ?? '';
  const base = first.split('/').pop() ?? first;
  if (base.startsWith('python')) {
    const module = /-m (\S+)/.exec(command)?.[1];
    const script = command.split(' ').find((part) => part.endsWith('.py'));
    return `python ${module ?? script?.split('/').pop() ?? ''}`.trim();
  }
  return base;
}

export class ProcessWatch {
  private readonly seen = new Map<string, Seen>();
  private readonly live = new Map<number, { key: string; remote: boolean }>();
  private workersPeakKb = 0;
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
    let workersKb = 0;
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
      if (memory) {
        seen.hwmKb = Math.max(seen.hwmKb ?? 0, memory.hwm);
        if (seen.role === 'workers') workersKb += memory.rss;
      }
    }
    this.workersPeakKb = Math.max(this.workersPeakKb, workersKb);
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

  peaks(): MemoryPeaks {
    const all = [...this.seen.values()].filter((s) => s.role && s.hwmKb);
    const sum = (role: Role): number | null => {
      const of = all.filter((s) => s.role === role);
      return of.length === 0 ? null : of.reduce((total, s) => total + s.hwmKb!, 0) / 1024;
    };
    return {
      driverMb: sum('driver'),
      coordinatorMb: sum('coordinator'),
      workersMb: this.workersPeakKb > 0 ? this.workersPeakKb / 1024 : null,
      coordinatorProcesses: [...new Set(all.filter((s) => s.role === 'coordinator').map((s) => s.name!))].sort(),
    };
  }
}
