import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { makeDirs, writeFileAtomic } from '../../src/util/fs.js';

describe('makeDirs', () => {
  const made: string[] = [];
  const scratch = () => {
    const d = mkdtempSync(join(tmpdir(), 'fs-test-'));
    made.push(d);
    return d;
  };
  afterEach(() => {
    for (const d of made.splice(0)) rmSync(d, { recursive: true, force: true });
  });

  it('creates every missing level and accepts existing directories', () => {
    const root = scratch();
    const deep = join(root, 'a', 'b', 'c');
    makeDirs(deep);
    expect(statSync(deep).isDirectory()).toBe(true);
    makeDirs(deep);
    makeDirs(root);
    writeFileAtomic(join(root, 'x', 'y', 'f.txt'), 'hello');
    expect(readFileSync(join(root, 'x', 'y', 'f.txt'), 'utf8')).toBe('hello');
  });

  it('names the directory it cannot create when a parent is a file', () => {
    const root = scratch();
    writeFileSync(join(root, 'file'), '');
    expect(() => makeDirs(join(root, 'file', 'sub', 'dir'))).toThrow(`cannot create directory ${join(root, 'file', 'sub')} (for ${join(root, 'file', 'sub', 'dir')})`);
    expect(existsSync(join(root, 'file', 'sub'))).toBe(false);
  });

  // Node 20's recursive mkdirSync never returns for such a path; this one must fail at once.
  it.runIf(existsSync('/proc/self'))('fails, rather than hangs, where the file system refuses a directory', () => {
    expect(() => makeDirs('/proc/no-such-dir/profile')).toThrow('cannot create directory /proc/no-such-dir');
  });
});
