/**
 * Coordinator <-> fork server channel: newline-delimited JSON both ways over the server's fd 3
 * (a socketpair). The server imports hyperopt once and forks the run's local workers and its
 * driver; it reports every child's exit. See docs/protocols.md, "Fork server channel".
 */
import { z } from 'zod';
import { Versions } from './common';

export const ForkServerReady = z.object({
  type: z.literal('ready'),
  pid: z.number().int(),
  python: z.string(),
  executable: z.string(),
  versions: Versions,
  /** The interpreter cannot run trials (hyperopt missing or too old); the server exits. */
  error: z.object({ code: z.string(), message: z.string() }).optional(),
});

export const ForkServerForked = z.object({
  type: z.literal('forked'),
  id: z.number().int(),
  pid: z.number().int(),
});

export const ForkServerForkFailed = z.object({
  type: z.literal('fork_failed'),
  id: z.number().int(),
  message: z.string(),
});

/** A child the server forked has ended: its exit code, or the number of the signal that ended it. */
export const ForkServerExited = z.object({
  type: z.literal('exited'),
  pid: z.number().int(),
  code: z.number().int().nullable(),
  signal: z.number().int().nullable(),
});

export const ForkRequest = z.object({
  type: z.literal('fork'),
  id: z.number().int(),
  role: z.enum(['worker', 'driver']),
  /** The child's whole environment (it replaces the server's). */
  env: z.record(z.string(), z.string()),
  cwd: z.string(),
  /** The driver's script and its arguments. */
  argv: z.array(z.string()).optional(),
  /** Where a worker connects its protocol and output sockets, and the token it opens them with. */
  connect: z.object({ host: z.string(), port: z.number().int(), token: z.string() }).optional(),
});

export const ForkServerToCoordinator = z.discriminatedUnion('type', [ForkServerReady, ForkServerForked, ForkServerForkFailed, ForkServerExited]);
export type ForkServerToCoordinator = z.infer<typeof ForkServerToCoordinator>;
export const CoordinatorToForkServer = z.discriminatedUnion('type', [ForkRequest]);
export type CoordinatorToForkServer = z.infer<typeof CoordinatorToForkServer>;

export type ForkServerReady = z.infer<typeof ForkServerReady>;
export type ForkRequest = z.infer<typeof ForkRequest>;

/** The first line a forked worker sends on each of its two connections. */
export const WorkerSocketOpening = z.object({
  token: z.string(),
  channel: z.enum(['protocol', 'output']),
});
export type WorkerSocketOpening = z.infer<typeof WorkerSocketOpening>;
