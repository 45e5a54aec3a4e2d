// A full disk during `npm run train`: the error names the file, the space the write needs and
// what is free, and says that --resume continues; with room again, --resume finishes the run.
// The small file system is a tmpfs mounted in a private mount namespace (unshare), so the test
// needs no privileges beyond user namespaces and leaves nothing mounted.

import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';

describe('npm run train on a full disk', () => {
  it('names the file and the space, and --resume continues once there is room', { timeout: 300_000 }, () => {
    const out = mkdtempSync(join(tmpdir(), 'diskfull-'));
    const train = `${JSON.stringify(process.execPath)} --import tsx tools/train.ts --preset smoke --out ${out}`;
    // 60 MiB hold one checkpoint generation (about 37 MiB) but not two.
    const script = [
      `mount -t tmpfs -o size=60m tmpfs ${out}`,
      `${train} 2>&1; echo "first exit $?"`,
      `mount -o remount,size=1g ${out}`,
      `${train} --resume 2>&1; echo "second exit $?"`,
      `ls ${out}/*/export/manifest.json`,
    ].join('\n');
    const r = spawnSync('unshare', ['-rm', 'sh', '-c', script], { encoding: 'utf8', cwd: process.cwd() });
    const text = r.stdout + r.stderr;
    expect(r.status, text).toBe(0);
    expect(text).toMatch(new RegExp(`error: no space left on the device for ${out}/smoke-[^/]+/checkpoints/\\d+/\\w+\\.safetensors: the write needs [\\d.]+ MiB and [\\d.]+ MiB are free there\\. Free some space on that file system \\(or choose another location\\); then \`npm run train -- --preset smoke --out ${out} --resume\` continues from the last checkpoint\\.`));
    expect(text).toMatch(/first exit 1/);
    expect(text).toMatch(/resumed from checkpoint generation 1 \(verified\)/);
    expect(text).toMatch(/second exit 0/);
    expect(text).toMatch(/export\/manifest\.json/);
    rmSync(out, { recursive: true, force: true });
  });
});
