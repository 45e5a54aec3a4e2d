import { describe, expect, it } from 'vitest';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import onnxProto from 'onnx-proto';
import { Graph } from '../../src/graph/ir.js';
import { decodeModel, emitModel, OPSET } from '../../src/graph/onnx.js';
import * as o from '../../src/graph/ops.js';
import * as teacher from '../../graphs/teacher.js';
import * as student from '../../graphs/student.js';
import { buildFeatureStep } from '../../graphs/features.js';

const emitted = () => {
  const w = new Map<string, Float32Array>();
  const gw = new Graph();
  teacher.generatorParams(gw, teacher.referenceTeacher);
  for (const l of gw.leaves.values()) w.set(l.name, new Float32Array(l.value.size).fill(0.01));
  const dw = new Graph();
  student.decoderParams(dw, student.referenceStudent);
  for (const l of dw.leaves.values()) w.set(l.name, new Float32Array(l.value.size).fill(0.01));
  return {
    critic_step: teacher.buildCriticStep(new Graph(), teacher.referenceTeacher, teacher.referenceTraining),
    generator_step: teacher.buildGeneratorStep(new Graph(), teacher.referenceTeacher, teacher.referenceTraining),
    student_step: student.buildStudentStep(new Graph(), student.referenceStudent, student.referenceStudentLoss, 8),
    features_step: buildFeatureStep(new Graph(), 8),
    generator: teacher.emitGeneratorInference(teacher.referenceTeacher, 4, w),
    decoder: student.emitDecoderInference(student.referenceStudent, 4, w),
  };
};

const hasOnnx = spawnSync('/usr/bin/python3', ['-c', 'import onnx'], { stdio: 'ignore' }).status === 0;

describe('ONNX export', () => {
  // CI installs Debian's python3-onnx, so there this check always runs.
  it.skipIf(!hasOnnx && !process.env.CI)('passes onnx.checker with full shape checking', () => {
    const dir = mkdtempSync(join(tmpdir(), 'onnx-'));
    const models = emitted();
    for (const [name, m] of Object.entries(models)) writeFileSync(join(dir, `${name}.onnx`), m.bytes);
    const py = `
import onnx, sys, glob
for f in sorted(glob.glob(sys.argv[1] + '/*.onnx')):
    m = onnx.load(f)
    onnx.checker.check_model(m, full_check=True)
    inferred = onnx.shape_inference.infer_shapes(m, check_type=True, strict_mode=True)
    print('ok', f.split('/')[-1], m.opset_import[0].version, len(m.graph.node))
`;
    const r = spawnSync('/usr/bin/python3', ['-c', py, dir], { encoding: 'utf8' });
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    expect(r.stdout.trim().split('\n')).toHaveLength(Object.keys(models).length);
    expect(r.stdout).toMatch(/ok critic_step\.onnx 17/);
    rmSync(dir, { recursive: true });
  });

  it('round-trips through the onnx.proto schema unchanged', () => {
    for (const [name, m] of Object.entries(emitted())) {
      const decoded = decodeModel(m.bytes);
      expect(Number(decoded.opsetImport[0]!.version), name).toBe(OPSET);
      expect(decoded.graph!.node!.length, name).toBe(m.nodeCount);
      expect(decoded.graph!.input!.map((i) => i.name), name).toEqual(m.inputs.map((i) => i.name));
      expect(decoded.graph!.output!.map((i) => i.name), name).toEqual(m.outputs.map((i) => i.name));
      const again = onnxProto.onnx.ModelProto.encode(decoded).finish();
      expect(Buffer.from(again).equals(Buffer.from(m.bytes)), name).toBe(true);
    }
  });

  it('emits only the nodes the outputs need, with identical subexpressions shared', () => {
    const g = new Graph();
    const x = g.input('x', [2, 3]);
    const unused = g.input('unused', [5]);
    const a = o.exp(x);
    const b = o.exp(x); // interned: the same value as a
    o.log(unused);
    expect(b).toBe(a);
    const m = emitModel(g, { outputs: { y: o.add(a, b) } });
    expect(m.inputs.map((i) => i.name)).toEqual(['x']);
    expect(decodeModel(m.bytes).graph!.node!.map((n) => n.opType)).toEqual(['Exp', 'Add']);
  });
});
