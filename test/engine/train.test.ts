import { describe, expect, it } from 'vitest';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import * as ort from 'onnxruntime-node';
import { StepRunner, TensorStore, createSession, checkDevice } from '../../src/runtime/index.js';
import { leafInfos, readManifest, readStepGraph, writeArtifacts } from '../../src/train/artifacts.js';
import { Rng } from '../../src/util/rng.js';
import { encodeSafetensors } from '../../src/graph/safetensors.js';
import { CLASSES, SIZE, toyBatch, toyInference, toyTrainStep } from './toy.js';

const tmp = () => mkdtempSync(join(tmpdir(), 'engine-'));

describe('training through emitted artifacts', () => {
  it('a small conv classifier reaches at least 95% test accuracy', async () => {
    const dir = tmp();
    const batch = 32;
    const { graph, step } = toyTrainStep(batch);
    const fresh = new TensorStore();
    fresh.declare(graph, 1);
    writeArtifacts(dir, { model: 'toy', leaves: leafInfos(fresh), steps: [step], inference: {}, checkpoint: fresh.toSafetensors(), hyperParameters: { lr: 1e-2 }, config: { batch } });
    expect(readdirSync(dir).sort()).toEqual(['checkpoint.safetensors', 'manifest.json', 'train_step.onnx']);

    // From here on, only the files in `dir` are used.
    const manifest = readManifest(dir);
    expect(manifest.opset).toBe(17);
    expect(manifest.leaves.map((l) => l.name).sort()).toEqual(['c1.bias', 'c1.weight', 'fc.bias', 'fc.weight', 'c1.bias.adam_m', 'c1.bias.adam_v', 'c1.weight.adam_m', 'c1.weight.adam_v', 'fc.bias.adam_m', 'fc.bias.adam_v', 'fc.weight.adam_m', 'fc.weight.adam_v'].sort());
    const store = new TensorStore();
    for (const l of manifest.leaves) store.specs.set(l.name, { ...l, dtype: 'float32' });
    store.load(join(dir, manifest.checkpoint));
    const runner = await StepRunner.create(readStepGraph(dir, manifest, 'train_step'), store, { threads: 1 });
    const rng = new Rng(3);
    const losses: number[] = [];
    for (let i = 0; i < 150; i++) {
      const { x, y } = toyBatch(rng, batch);
      losses.push((await runner.run({ x, y, lr: 1e-2 })).loss!);
    }
    expect(losses.at(-1)!).toBeLessThan(losses[0]! / 4);

    // The trained model as an artifact with its self-contained inference graph, then used from disk.
    const weights = new Map(['c1.weight', 'c1.bias', 'fc.weight', 'fc.bias'].map((n) => [n, store.read(n)]));
    const done = mkdtempSync(join(tmpdir(), 'engine-'));
    writeArtifacts(done, { model: 'toy', leaves: leafInfos(store), steps: [runner.graph], inference: { infer: toyInference(512, weights) }, checkpoint: store.toSafetensors(), hyperParameters: { lr: 1e-2 }, config: { batch } });
    const m2 = readManifest(done);
    expect(m2.graphs.infer!.inputs).toEqual([{ name: 'x', shape: [512, 1, SIZE, SIZE], dtype: 'float32' }]);
    const test = toyBatch(new Rng(99), 512);
    const infer = await createSession(readFileSync(join(done, m2.graphs.infer!.file)), { threads: 1 });
    const out = await infer.run({ x: new ort.Tensor('float32', test.x, [512, 1, SIZE, SIZE]) });
    const logits = out.logits!.data as Float32Array;
    let correct = 0;
    test.labels.forEach((k, i) => {
      const row = Array.from(logits.subarray(i * CLASSES, (i + 1) * CLASSES));
      if (row.indexOf(Math.max(...row)) === k) correct++;
    });
    expect(correct / 512).toBeGreaterThanOrEqual(0.95);
    rmSync(dir, { recursive: true });
  });

  it('a run killed and resumed gives the same losses as an uninterrupted run', () => {
    const script = join(import.meta.dirname, 'resume-run.ts');
    const run = (dir: string, extra: string[]) => spawnSync(process.execPath, ['--import', 'tsx', script, '--dir', dir, '--steps', '30', '--save-every', '5', ...extra], { encoding: 'utf8' });
    const straight = tmp();
    expect(run(straight, []).status).toBe(0);
    const crashed = tmp();
    const killed = run(crashed, ['--kill-at', '17']);
    expect(killed.signal).toBe('SIGKILL');
    // Steps 16 and 17 ran after the last checkpoint (15) and are lost with the crash; the resumed run redoes them.
    const logged = readFileSync(join(crashed, 'losses.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { step: number; loss: number });
    writeFileSync(join(crashed, 'losses.jsonl'), logged.filter((l) => l.step <= 15).map((l) => JSON.stringify(l) + '\n').join(''));
    expect(run(crashed, ['--resume']).status).toBe(0);
    const read = (d: string) => readFileSync(join(d, 'losses.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { step: number; loss: number });
    const a = read(straight);
    const b = read(crashed);
    expect(b.map((l) => l.step)).toEqual(a.map((l) => l.step));
    expect(b.map((l) => l.loss)).toEqual(a.map((l) => l.loss));
    expect(a.length).toBe(30);
    rmSync(straight, { recursive: true });
    rmSync(crashed, { recursive: true });
  });

  it('refuses a checkpoint whose names or shapes do not match', async () => {
    const dir = tmp();
    const { graph } = toyTrainStep(8);
    const store = new TensorStore();
    store.declare(graph, 1);
    store.save(join(dir, 'a.safetensors'));
    const other = new TensorStore();
    other.declare(toyTrainStep(8).graph, 1);
    other.specs.set('c1.weight', { ...other.specs.get('c1.weight')!, shape: [4, 1, 3, 3] });
    expect(() => other.load(join(dir, 'a.safetensors'))).toThrow(/'c1.weight' has shape \[8,1,3,3\] but the model expects \[4,1,3,3\]/);
    other.specs.delete('fc.bias');
    other.specs.set('extra.w', { name: 'extra.w', role: 'param', shape: [2], dtype: 'float32' });
    expect(() => other.load(join(dir, 'a.safetensors'))).toThrow(/missing extra\.w; unexpected fc\.bias/);
    writeFileSync(join(dir, 'bad.safetensors'), new Uint8Array([1, 2, 3]));
    expect(() => other.load(join(dir, 'bad.safetensors'))).toThrow(/not a safetensors file/);
    // A version-1 checkpoint (linear layers read channels-first flattens): same shapes, refused.
    const old = new Map([...store.tensors].map(([n, t]) => [n, { dtype: 'float32' as const, shape: [...t.dims], data: t.data as Float32Array }]));
    writeFileSync(join(dir, 'v1.safetensors'), encodeSafetensors(old, { counters: '{}', format: 'lifelong-gen-checkpoint/1' }));
    const same = new TensorStore();
    same.declare(graph, 1);
    expect(() => same.load(join(dir, 'v1.safetensors'))).toThrow(/format 'lifelong-gen-checkpoint\/1', but this version reads 'lifelong-gen-checkpoint\/2'.*Start the run over \(`npm run train -- --fresh`/);
    expect(() => same.load(join(dir, 'a.safetensors'))).not.toThrow();
    // Damaged step counters in the metadata are named, not loaded as NaN steps.
    for (const counters of ['{"train_step":', '{"train_step":-1}', '[1]']) {
      writeFileSync(join(dir, 'counters.safetensors'), encodeSafetensors(old, { counters, format: 'lifelong-gen-checkpoint/2' }));
      expect(() => same.load(join(dir, 'counters.safetensors')), counters).toThrow(/counters.safetensors: its step counters .* are not a JSON object of step counts/);
    }
    rmSync(dir, { recursive: true });
  });

  it("asks for the CUDA install when device 'cuda' has no provider libraries", () => {
    expect(() => checkDevice('cuda')).toThrow(/npm run install:cuda/);
    expect(() => checkDevice('cpu')).not.toThrow();
  });
});
