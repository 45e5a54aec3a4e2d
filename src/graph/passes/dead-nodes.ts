// Dead-node elimination after the rewriting passes.

import type { Node, Pass } from './pass.js';

/** `nodes` without those whose outputs nothing reads (graph outputs are read). */
export function withoutDeadNodes(nodes: readonly Node[], outputs: readonly string[]): Node[] {
  const live = new Set(outputs);
  const kept: Node[] = [];
  for (let i = nodes.length - 1; i >= 0; i--) {
    const n = nodes[i]!;
    if (!(n.output ?? []).some((o) => live.has(o))) continue;
    kept.push(n);
    for (const x of n.input ?? []) live.add(x);
  }
  return kept.reverse();
}

export const deadNodesPass: Pass = { name: 'dead-nodes', run: (nodes, c) => withoutDeadNodes(nodes, c.outputs) };
