// The export manifest's rule for which teacher expert serves a task. Pure (no Node) and outside
// src/train, so the runtime-agnostic serving app (src/serve/registry.ts, bundled for edge
// runtimes) uses the same rule as training and evaluation; src/train/export.ts re-exports it.

/**
 * The one rule for which teacher expert serves a task, for training, evaluation and serving: the
 * expert whose task list holds it (the manifest schema allows each task under one expert only).
 */
export function expertIndexForTask(experts: readonly { tasks: readonly string[] }[], task: string): number | null {
  const i = experts.findIndex((e) => e.tasks.includes(task));
  return i < 0 ? null : i;
}
