/** How many trials of a study run at once, and who decided it. */

/** What set a study's parallelism: the run's option (--parallelism, the editor's choice), the script's Trials, or the executors' slots. */
export type ParallelismSource = 'option' | 'script' | 'slots';

export interface ParallelismDecision {
  readonly parallelism: number;
  readonly source: ParallelismSource;
  /** One line for the user when the script's value was overridden or lowered. */
  readonly notice?: string;
}

/**
 * The run's option wins over the script's value (SparkTrials(parallelism=...), RunnerTrials);
 * a script's value above the slots the executors can ever use is lowered to them, since
 * trials beyond the slots would only wait in the queue while hyperopt proposes them early.
 * `capacity` is the executors' slots that are not retired (hosts still connecting count).
 */
export function decideParallelism(option: number | null | undefined, script: number | null, capacity: number): ParallelismDecision {
  const slots = Math.max(1, capacity);
  if (option !== null && option !== undefined) {
    const parallelism = Math.max(1, Math.floor(option));
    if (script !== null && script !== parallelism) {
      return { parallelism, source: 'option', notice: `parallelism ${parallelism} (the run's option) is used instead of the script's ${script}` };
    }
    return { parallelism, source: 'option' };
  }
  if (script !== null && script >= 1) {
    if (script > slots) {
      return {
        parallelism: slots,
        source: 'slots',
        notice: `the script asks for parallelism ${script}, but the executors have ${slots} slot${slots === 1 ? '' : 's'}: ${slots} trial${slots === 1 ? '' : 's'} run at once`,
      };
    }
    return { parallelism: script, source: 'script' };
  }
  return { parallelism: slots, source: 'slots' };
}
