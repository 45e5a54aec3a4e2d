// Forgetting analysis over the matrix R[stage][task] of a metric (the value for `task` measured
// with the models as they were at the end of `stage`), as Avalanche defines it:
//   forgetting of task j = value right after learning j - value at the end, sign-adjusted so that
//   a positive number means the task got worse (for lower-is-better metrics such as FID: end - initial);
//   average forgetting = mean over the tasks learned before the last stage;
//   backward transfer (BWT) = - average forgetting (positive: learning later tasks helped earlier ones).

export type Direction = 'lower' | 'higher';

/** R[stage][task]; null where the task was not learned yet or could not be measured. */
export type Matrix = (number | null)[][];

export interface ForgettingSummary {
  direction: Direction;
  /** Per task: forgetting (positive = worse), null for the last task and unmeasured ones. */
  forgetting: (number | null)[];
  /** Mean over tasks with a value; null when there are none (e.g. a single stage). */
  averageForgetting: number | null;
  bwt: number | null;
}

/**
 * Forgetting per task and on average. `learnedAt[j]` is the stage that learned task j (default j:
 * the tasks are learned in order, one per stage); the final values are those of the last stage.
 */
export function forgetting(R: Matrix, direction: Direction, learnedAt?: readonly number[]): ForgettingSummary {
  const stages = R.length;
  const tasks = R[0]?.length ?? 0;
  for (const row of R) if (row.length !== tasks) throw new Error(`forgetting: every stage needs ${tasks} task entries, got a row of ${row.length}`);
  const last = stages - 1;
  const sign = direction === 'higher' ? 1 : -1;
  const per: (number | null)[] = [];
  for (let j = 0; j < tasks; j++) {
    const k = learnedAt?.[j] ?? j;
    const initial = k >= 0 && k < stages ? R[k]![j] : null;
    const final = last >= 0 ? R[last]![j] : null;
    per.push(k < last && initial != null && final != null ? sign * (initial - final) : null);
  }
  const defined = per.filter((v): v is number => v !== null);
  const averageForgetting = defined.length ? defined.reduce((a, b) => a + b, 0) / defined.length : null;
  return { direction, forgetting: per, averageForgetting, bwt: averageForgetting === null ? null : averageForgetting === 0 ? 0 : -averageForgetting };
}
