// The emitter's pass pipelines.

import { deadNodesPass } from './dead-nodes.js';
import { foldReshapesPass } from './fold-reshapes.js';
import type { Pass } from './pass.js';
import { sinkTransposesPass } from './sink-transposes.js';

export { runPasses, type Node, type Pass, type PassContext } from './pass.js';
export { deadNodesPass, withoutDeadNodes } from './dead-nodes.js';
export { foldReshapesPass, foldReshapes } from './fold-reshapes.js';
export { sinkTransposesPass, sinkTransposes, splitsNarrowSum } from './sink-transposes.js';

/**
 * The CPU pipeline: fold Reshape chains so that a lowering's layout transposes meet, sink and
 * cancel them, then drop what no output reads.
 */
export const CPU_PASSES: readonly Pass[] = [foldReshapesPass, sinkTransposesPass, deadNodesPass];
