// Seeded parameter initialisers. Each tensor draws from its own stream, derived from the run
// seed and the tensor's name, so adding a layer does not change the others' initial values.

import { type Initializer, type Shape, sizeOf } from './ir.js';
import { Rng } from '../util/rng.js';

export function hashName(name: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < name.length; i++) h = Math.imul(h ^ name.charCodeAt(i), 0x01000193) >>> 0;
  return h;
}

export function initialize(init: Initializer, shape: Shape, seed: number, name: string): Float32Array {
  const out = new Float32Array(sizeOf(shape));
  const rng = new Rng((seed ^ hashName(name)) >>> 0);
  switch (init.kind) {
    case 'zeros':
      return out;
    case 'ones':
      return out.fill(1);
    case 'constant':
      return out.fill(init.value);
    case 'normal':
      return rng.fillNormal(out, init.std, init.mean ?? 0);
    case 'uniform':
      return rng.fillUniform(out, init.low, init.high);
    case 'kaimingUniform': {
      const bound = (init.gain ?? Math.SQRT2) * Math.sqrt(3 / init.fanIn);
      return rng.fillUniform(out, -bound, bound);
    }
    case 'kaimingNormal':
      return rng.fillNormal(out, (init.gain ?? Math.SQRT2) / Math.sqrt(init.fanIn));
    case 'xavierUniform': {
      const bound = (init.gain ?? 1) * Math.sqrt(6 / (init.fanIn + init.fanOut));
      return rng.fillUniform(out, -bound, bound);
    }
    case 'xavierNormal':
      return rng.fillNormal(out, (init.gain ?? 1) * Math.sqrt(2 / (init.fanIn + init.fanOut)));
  }
}

/** PyTorch's default for Linear and Conv layers (Kaiming-uniform with a = sqrt(5)): U(-1/sqrt(fanIn), 1/sqrt(fanIn)). */
export function torchDefault(fanIn: number): Initializer {
  return { kind: 'kaimingUniform', fanIn, gain: Math.sqrt(1 / 3) };
}
