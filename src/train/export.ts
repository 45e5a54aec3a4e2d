// The `export/` folder of a run: self-contained ONNX models (weights baked in, batch
// dimension symbolic) and a manifest that serving, evaluation and web pages read.

import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { z } from 'zod';
import type { EmittedModel } from '../graph/onnx.js';
import { writeFileAtomic } from '../util/fs.js';

export const EXPORT_FORMAT = 'lifelong-gen-export/1';

const tensor = z.object({ name: z.string(), shape: z.array(z.union([z.number().int(), z.literal('N')])), dtype: z.enum(['float32', 'int64', 'bool']) });
const model = z.object({ file: z.string(), sha256: z.string().regex(/^[0-9a-f]{64}$/), bytes: z.number().int(), inputs: z.array(tensor), outputs: z.array(tensor) });

export const exportManifestSchema = z.object({
  format: z.literal(EXPORT_FORMAT),
  run: z.string(),
  createdAt: z.string(),
  /** Tasks in the order they were learned; `index` is the task input's one-hot position. */
  tasks: z.array(z.object({ name: z.string(), index: z.number().int().nonnegative() })).min(1),
  student: z.object({
    zDim: z.number().int().positive(),
    /** z [N, zDim] and task one-hot [N, T] -> images [N, 1, 28, 28] in [0, 1]. */
    decoder: model,
    /** images [N, 1, 28, 28] in [0, 1] -> mu, logvar [N, zDim], task logits [N, T]. */
    encoder: model.optional(),
    /** Prior mean and log-variance per task, for sampling z | task. */
    prior: z.object({ mu: z.array(z.array(z.number())), logvar: z.array(z.array(z.number())) }),
  }),
  teacher: z
    .object({
      zDim: z.number().int().positive(),
      /** Each expert: z [N, zDim] -> images [N, 1, 28, 28] in [0, 1], and the tasks it holds. */
      experts: z.array(model.extend({ tasks: z.array(z.string()) })),
    })
    .superRefine((t, ctx) => {
      const seen = new Map<string, number>();
      t.experts.forEach((e, i) =>
        e.tasks.forEach((task) => {
          if (seen.has(task)) ctx.addIssue({ code: 'custom', path: ['experts', i, 'tasks'], message: `task '${task}' is listed under experts ${seen.get(task)} and ${i}; each task has one expert` });
          seen.set(task, i);
        }),
      );
    })
    .optional(),
});
export type ExportManifest = z.infer<typeof exportManifestSchema>;
export type ExportedModel = z.infer<typeof model>;

export { expertIndexForTask } from '../formats/expert-of-task.js';

export function sha256(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex');
}

/** Writes one model file and returns its manifest entry (batch dimension shown as 'N'). */
export function writeModel(dir: string, file: string, m: EmittedModel, dynamicBatch?: number): ExportedModel {
  writeFileAtomic(join(dir, file), m.bytes);
  const dims = (shape: number[]) => shape.map((d, i) => (i === 0 && d === dynamicBatch ? ('N' as const) : d));
  return {
    file,
    sha256: sha256(m.bytes),
    bytes: m.bytes.length,
    inputs: m.inputs.map((t) => ({ ...t, shape: dims(t.shape) })),
    outputs: m.outputs.map((t) => ({ ...t, shape: dims(t.shape) })),
  };
}

/** Validates and writes manifest.json last, so a folder with a manifest is complete. */
export function writeExportManifest(dir: string, m: ExportManifest): void {
  writeFileAtomic(join(dir, 'manifest.json'), JSON.stringify(exportManifestSchema.parse(m), null, 2) + '\n');
}

export function readExportManifest(dir: string): ExportManifest {
  const path = join(dir, 'manifest.json');
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(path, 'utf8'));
  } catch (err) {
    throw new Error(`cannot read ${path}: ${(err as Error).message}. Train a model first (npm run train) or pass --run with a run folder that has export/manifest.json`);
  }
  const parsed = exportManifestSchema.safeParse(raw);
  if (!parsed.success) throw new Error(`${path} is not a valid export manifest: ${parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`);
  return parsed.data;
}
