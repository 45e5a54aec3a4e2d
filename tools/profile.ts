// Summarises an onnxruntime profile (the JSON trace that --profile writes): time per op type
// and the slowest nodes, averaged over the runs in the trace.

import { readFileSync } from 'node:fs';

const file = process.argv[2];
if (!file || file === '--help' || file === '-h') {
  console.log('usage: npx tsx tools/profile.ts PROFILE.json [topN]\nSummarises an onnxruntime profile: time per op type and the slowest nodes.');
  process.exit(file ? 0 : 1);
}
const top = Number(process.argv[3] ?? 15);
const events = JSON.parse(readFileSync(file, 'utf8')) as { cat: string; name: string; dur: number; args?: { op_name?: string } }[];
const runs = events.filter((e) => e.cat === 'Session' && e.name === 'model_run').length || 1;
const byType = new Map<string, number>();
const byNode = new Map<string, number>();
for (const e of events) {
  if (e.cat !== 'Node' || !e.name.endsWith('_kernel_time')) continue;
  const op = e.args?.op_name ?? '?';
  byType.set(op, (byType.get(op) ?? 0) + e.dur);
  const node = `${e.name.replace(/_kernel_time$/, '')} (${op})`;
  byNode.set(node, (byNode.get(node) ?? 0) + e.dur);
}
const total = [...byType.values()].reduce((a, b) => a + b, 0);
console.log(`${runs} runs; kernel time per run ${(total / runs / 1000).toFixed(2)} ms`);
for (const [op, us] of [...byType].sort((a, b) => b[1] - a[1])) console.log(`  ${op.padEnd(20)} ${(us / runs / 1000).toFixed(3)} ms`);
console.log('slowest nodes:');
for (const [n, us] of [...byNode].sort((a, b) => b[1] - a[1]).slice(0, top)) console.log(`  ${n.padEnd(40)} ${(us / runs / 1000).toFixed(3)} ms`);
