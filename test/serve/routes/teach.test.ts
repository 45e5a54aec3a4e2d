// The teach panel's server side through app.request(): the isolation headers, the bundled worker,
// GET /teach/config.json from the run's config.json (or the defaults), and the encoder under /models.

import { cpSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, test } from 'vitest';
import type { Hono } from 'hono';
import { createApp } from '../../../src/serve/app.js';
import { nodeAssets } from '../../../src/serve/node/assets.js';
import { loadRun, readTeachInfo } from '../../../src/serve/node/run.js';
import { ortNodeBackend } from '../../../src/serve/backend/ort-node.js';
import { ModelRegistry } from '../../../src/serve/registry.js';
import { resolveConfig } from '../../../src/train/config.js';
import { EXPORT_FORMAT } from '../../../src/train/export.js';
import { makeDemoRun, type DemoRun } from '../fixture.js';
import { Graph } from '../../../src/graph/ir.js';
import * as student from '../../../graphs/student.js';
import { writeModel, readExportManifest, writeExportManifest } from '../../../src/train/export.js';

let demo: DemoRun;
let withEncoder: string;
const apps: Hono[] = [];

async function appFor(run: string): Promise<{ app: Hono; registry: ModelRegistry }> {
  const { dir, manifest, files } = loadRun(run);
  const registry = await ModelRegistry.load(manifest, files, ortNodeBackend());
  const app = createApp({ registry, assets: await nodeAssets(), teach: readTeachInfo(dir) });
  apps.push(app);
  return { app, registry };
}

beforeAll(() => {
  demo = makeDemoRun();
  // The demo export plus an encoder and a config.json beside export/, as a run of npm run train has.
  withEncoder = mkdtempSync(join(tmpdir(), 'teach-route-'));
  cpSync(demo.run, withEncoder, { recursive: true });
  const exp = join(withEncoder, 'export');
  const a = { ...student.referenceStudent, tasks: 2 };
  const g = new Graph();
  student.encoderParams(g, a);
  const w = new Map([...g.leaves.values()].map((l) => [l.name, new Float32Array(l.value.shape.reduce((x, y) => x * y, 1)).fill(0.01)]));
  const m = readExportManifest(exp);
  writeExportManifest(exp, { ...m, format: EXPORT_FORMAT, student: { ...m.student, encoder: writeModel(exp, 'student_encoder.onnx', student.emitEncoderInference(a, 8, w, true), 8) } });
  writeFileSync(join(withEncoder, 'config.json'), JSON.stringify(resolveConfig({ preset: 'smoke' }, ['student.train.lr=0.002'])) + '\n');
});

afterAll(() => {
  demo?.remove();
  if (withEncoder) rmSync(withEncoder, { recursive: true, force: true });
});

test('the page, its worker and onnxruntime-web\'s files are cross-origin isolated; the embeddable module is not', async () => {
  const { app } = await appFor(demo.run);
  for (const path of ['/', '/index.html', '/teach-worker.js', '/ort/ort.wasm.min.mjs']) {
    const res = await app.request(path);
    expect(res.status, path).toBe(200);
    expect([res.headers.get('Cross-Origin-Opener-Policy'), res.headers.get('Cross-Origin-Embedder-Policy')], path).toEqual(['same-origin', 'require-corp']);
    expect(res.headers.get('Cross-Origin-Resource-Policy'), path).toBe('cross-origin');
  }
  const embed = await app.request('/student-sampler.js');
  expect(embed.headers.get('Cross-Origin-Embedder-Policy')).toBeNull();
  expect(embed.headers.get('Cross-Origin-Resource-Policy')).toBe('cross-origin');
});

test('/teach-worker.js carries the graph builder and nothing from Node', async () => {
  const { app } = await appFor(demo.run);
  const js = await (await app.request('/teach-worker.js')).text();
  expect(js).toContain('student_step');
  expect(js).not.toMatch(/from\s*["'](node:|\.\.?\/|onnxruntime)/);
  expect(js).not.toMatch(/require\(["'](fs|path|crypto|node:)/);
  const panel = await app.request('/teach-panel.js');
  expect(panel.status).toBe(200);
});

test("GET /teach/config.json: the run's student config; the encoder is served under /models", async () => {
  const { app } = await appFor(withEncoder);
  const res = await app.request('/teach/config.json');
  expect(res.status).toBe(200);
  const body = (await res.json()) as any;
  expect(body.source).toBe('config.json of the run');
  expect(body.student.train).toMatchObject({ batch: 32, lr: 0.002 });
  const enc = await app.request(body.encoder.url);
  expect([enc.status, enc.headers.get('Content-Type')]).toEqual([200, 'application/octet-stream']);
});

test('GET /teach/config.json without an encoder (a demo export) says what to do; a damaged config.json fails at startup', async () => {
  const { app } = await appFor(demo.run);
  const res = await app.request('/teach/config.json');
  expect(res.status).toBe(404);
  expect(((await res.json()) as any).error).toMatch(/no student encoder .*npm run train/);
  writeFileSync(join(withEncoder, 'config.json'), '{"student": {"train": {"batch": -1}}}');
  expect(() => readTeachInfo(join(withEncoder, 'export'))).toThrow(/config\.json: its student section is not a valid student configuration \(.*train\.batch/);
  rmSync(join(withEncoder, 'config.json'));
  expect(readTeachInfo(join(withEncoder, 'export')).source).toMatch(/the defaults/);
});
