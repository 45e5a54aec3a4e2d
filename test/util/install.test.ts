import { execFileSync, spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';

// The install must stay quiet and offline-safe: npm 11 warns about any unknown .npmrc key, and
// onnxruntime-node's install script would download CUDA libraries from a host CI cannot reach.
describe('npm install configuration', () => {
  it('.npmrc holds only keys npm knows, and npm reads it without a warning', () => {
    const r = spawnSync('npm', ['config', 'get', 'ignore-scripts'], { encoding: 'utf8' });
    expect(r.status).toBe(0);
    expect(r.stderr).not.toMatch(/Unknown (project|user|env) config/);
    expect(r.stdout.trim()).toBe('true');
  });

  it('the CUDA download stays one explicit command away', () => {
    const pkg = JSON.parse(readFileSync('package.json', 'utf8')) as { scripts: Record<string, string> };
    expect(pkg.scripts['install:cuda']).toMatch(/ONNXRUNTIME_NODE_INSTALL=cuda12 node node_modules\/onnxruntime-node\/script\/install\.js/);
    // The script it names exists in the installed package (a version bump that moves it fails here).
    expect(() => execFileSync('node', ['-e', "require.resolve('onnxruntime-node/script/install.js')"], { stdio: 'pipe' })).not.toThrow();
  });
});
