// The compiler's safety net: the exact bytes of every emitted graph of the reference models and
// of the default preset, and the parameters after three steps of each training step. A change
// that moves any of them must say so and rewrite test/golden/golden.json on purpose:
//   GOLDEN_UPDATE=1 npx vitest run test/golden
// The smoke run's metric rows are held in the same file and checked by test/train/train.test.ts.

import { existsSync, readFileSync } from 'node:fs';
import { afterAll, describe, expect, it } from 'vitest';
import { writeFileAtomic } from '../../src/util/fs.js';
import { cpuModel, GOLDEN_FILE, graphHashes, paramsAfterThreeSteps, STEP_CASES, type StepResult } from './cases.js';

const UPDATE = process.env.GOLDEN_UPDATE === '1';

interface Golden {
  cpu: string;
  graphs: Record<string, string>;
  params: Record<string, StepResult>;
  smokeMetrics?: unknown[];
}

const golden: Golden = existsSync(GOLDEN_FILE) ? JSON.parse(readFileSync(GOLDEN_FILE, 'utf8')) : { cpu: '', graphs: {}, params: {} };
const fresh: Golden = { ...golden, cpu: cpuModel(), graphs: {}, params: {} };

afterAll(() => {
  if (UPDATE) writeFileAtomic(GOLDEN_FILE, `${JSON.stringify(fresh, null, 1)}\n`);
});

describe('golden graphs', () => {
  it('every emitted graph has the bytes recorded in golden.json', () => {
    fresh.graphs = graphHashes();
    if (UPDATE) return;
    expect(Object.keys(fresh.graphs).sort()).toEqual(Object.keys(golden.graphs).sort());
    for (const [name, h] of Object.entries(fresh.graphs)) expect(h, `${name}: emitted bytes changed (GOLDEN_UPDATE=1 rewrites them, on purpose only)`).toBe(golden.graphs[name]);
  });
});

describe('golden parameters after three steps', () => {
  for (const name of Object.keys(STEP_CASES)) {
    it(name, { timeout: 120_000 }, async () => {
      const r = await paramsAfterThreeSteps(name);
      fresh.params[name] = r;
      if (UPDATE) return;
      const want = golden.params[name];
      expect(want, `${name} is not in golden.json`).toBeDefined();
      expect(Object.keys(r.tensors)).toEqual(Object.keys(want!.tensors));
      if (golden.cpu === cpuModel()) {
        expect(r.sha256, `${name}: parameters after three steps changed`).toBe(want!.sha256);
        return;
      }
      // Another model of CPU runs other onnxruntime kernels: compare within float rounding.
      for (const [k, [l2, proj]] of Object.entries(r.tensors)) {
        const [wl2, wproj] = want!.tensors[k]!;
        const tol = 1e-4 * wl2 + 1e-6;
        expect(Math.abs(l2 - wl2), `${name} ${k} norm`).toBeLessThanOrEqual(tol);
        expect(Math.abs(proj - wproj), `${name} ${k} projection`).toBeLessThanOrEqual(tol);
      }
    });
  }
});
