// Compares the exact PNG encoder (src/serve/png-exact.ts) with sharp on many random cases,
// more than the test file can afford: every grid size at random scales, random image sizes,
// and each synthetic family. Run after upgrading sharp (libvips, libpng, zlib-ng):
//   npx tsx tools/png-exact-fuzz.ts [cases=2000] [seed=1]
// Exits 1 on the first mismatch, naming the case.

import { encodeGrayPngExact } from '../src/serve/png-exact.js';
import { upscale } from '../src/serve/sampling.js';
import { SAMPLE_DEFAULTS } from '../src/serve/routes/sample/index.js';
import { Rng } from '../src/util/rng.js';
import { firstDifference, gridCase, KINDS, makeImage, sharpPng, type Case } from '../test/serve/png-cases.js';

const total = Number(process.argv[2] ?? 2000);
const rng = new Rng(Number(process.argv[3] ?? 1));
const { maxN, maxScale } = SAMPLE_DEFAULTS;

function randomCase(i: number): Case {
  const pick = i % 4;
  if (pick === 0) return gridCase(rng, 1 + rng.int(maxN), 1 + rng.int(maxScale));
  if (pick === 1) return { label: 'tile', pixels: makeImage('mnist', 28, 28, rng), width: 28, height: 28, scale: 1 + rng.int(maxScale) };
  const kind = KINDS[rng.int(KINDS.length)]!;
  const big = rng.next() < 0.1;
  const width = 1 + rng.int(big ? 700 : 120);
  const height = 1 + rng.int(big ? 700 : 120);
  const scale = 1 + rng.int(width * height > 100_000 ? 2 : maxScale);
  return { label: `${kind} ${width}x${height} scale=${scale}`, pixels: makeImage(kind, width, height, rng), width, height, scale };
}

const cases: Case[] = [];
// The largest the route can ask for, first.
cases.push(gridCase(rng, maxN, maxScale));
for (let n = 1; n <= maxN; n++) cases.push(gridCase(rng, n, 1 + rng.int(maxScale)));
while (cases.length < total) cases.push(randomCase(cases.length));

let bytes = 0;
const started = Date.now();
for (const [i, c] of cases.entries()) {
  const want = await sharpPng(c);
  const got = encodeGrayPngExact(upscale(c.pixels, c.width, c.height, c.scale), c.width * c.scale, c.height * c.scale);
  const at = firstDifference(got, want);
  if (at >= 0) {
    console.error(`case ${i} (${c.label}): first difference at byte ${at} of ${want.length} (ours ${got.length})`);
    process.exit(1);
  }
  bytes += want.length;
  if ((i + 1) % 250 === 0) console.log(`${i + 1}/${cases.length} identical (${(bytes / 1e6).toFixed(1)} MB of PNG, ${((Date.now() - started) / 1000).toFixed(0)} s)`);
}
console.log(`all ${cases.length} cases byte-identical to sharp (${(bytes / 1e6).toFixed(1)} MB of PNG)`);
