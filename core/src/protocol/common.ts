import * as z from 'zod';

/** Version of both channels (driver and worker); a peer with another major version is refused. */
export const PROTOCOL_VERSION = 2;

/** Opaque bytes (a cloudpickle payload), base64 in JSON. The coordinator never decodes these. */
export const Blob = z.string();

/** A loss as JSON can carry it: finite numbers as numbers, the rest spelled out. */
export const Loss = z.union([z.number(), z.enum(['NaN', 'Infinity', '-Infinity']), z.null()]);
export type Loss = z.infer<typeof Loss>;

export function lossToNumber(loss: Loss | undefined): number | undefined {
  if (loss === null || loss === undefined) return undefined;
  if (typeof loss === 'number') return loss;
  return loss === 'NaN' ? Number.NaN : loss === 'Infinity' ? Infinity : -Infinity;
}

export function numberToLoss(value: number | undefined): Loss {
  if (value === undefined) return null;
  if (Number.isNaN(value)) return 'NaN';
  if (value === Infinity) return 'Infinity';
  if (value === -Infinity) return '-Infinity';
  return value;
}

/** What the coordinator reads of a trial's result; the full result travels as an opaque blob. */
export const ResultSummary = z.object({
  status: z.string(),
  loss: Loss,
});
export type ResultSummary = z.infer<typeof ResultSummary>;

/** An exception raised by the objective (or a reason the system ended a trial). */
export const TrialError = z.object({
  type: z.string(),
  message: z.string(),
  traceback: z.string().optional(),
});
export type TrialError = z.infer<typeof TrialError>;

export const Versions = z.record(z.string(), z.string().nullable());

/** JSON-safe value of one hyperparameter, for views: numbers, strings, booleans or null. */
export const ParamValue = z.union([z.number(), z.string(), z.boolean(), z.null()]);
export type ParamValue = z.infer<typeof ParamValue>;
