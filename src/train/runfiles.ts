// The files of a run folder that make resume exact and safe: the validated run state, checkpoint
// generations whose files carry SHA-256 recorded at their commit point, the metrics log that a
// resume cuts back to its last checkpoint, and the lock that keeps two runs out of one folder.
//
// checkpoints/<g>/ holds generation g's tensors and its own state.json; checkpoints/state.json,
// replaced atomically, is the commit point and names the newest generation. The generation
// before it is kept, so a damaged newest one still leaves a verified state to resume from.

import { createHash } from 'node:crypto';
import { existsSync, readFileSync, readdirSync, rmSync, statSync, truncateSync, utimesSync, openSync, writeSync, closeSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { z } from 'zod';
import { appendFile, writeFileAtomic, explainWriteError } from '../util/fs.js';
import type { ExpertDecision } from './teacher.js';

export const RUN_STATE_FORMAT = 'lifelong-gen-run-state/1';

const count = z.number().int().nonnegative();
const sha = z.string().regex(/^[0-9a-f]{64}$/, 'a SHA-256 in hex');

export const runStateSchema = z.object({
  format: z.literal(RUN_STATE_FORMAT),
  stage: count,
  phase: z.enum(['teacher', 'student', 'done']),
  /** Progress within the phase (generator iterations or student steps). */
  progress: count,
  /** Expert id per learned task (index = task). */
  expertOfTask: z.array(count),
  experts: z.array(z.object({ id: count, tasks: z.array(z.string()), fid: z.record(z.string(), z.number()), scoreStats: z.object({ mean: z.number(), std: z.number() }) })),
  decisions: z.array(z.object({ task: z.string(), fids: z.record(z.string(), z.number()), samples: count, threshold: z.number(), ownFids: z.record(z.string(), z.number()).optional(), action: z.enum(['new', 'reuse', 'first', 'cap']), expert: count })),
  rng: z.array(z.number().nullable()),
  generation: count,
  /** Size of metrics.jsonl at the commit point: a resume cuts the log back to it. */
  metricsBytes: count,
  /** SHA-256 of each file of the generation, taken from the bytes written. */
  files: z.record(z.string(), sha),
  /** The adaptive distillation temperature mid-phase. */
  temperature: z.object({ t: z.number(), reference: z.number().nullable() }).optional(),
});

export type RunState = z.infer<typeof runStateSchema>;
// The schema's decision rows are the teacher's decisions.
const _decisions: ExpertDecision[] = [] as RunState['decisions'];
void _decisions;

export function initialState(rng: number[]): RunState {
  return { format: RUN_STATE_FORMAT, stage: 0, phase: 'teacher', progress: 0, expertOfTask: [], experts: [], decisions: [], rng, generation: 0, metricsBytes: 0, files: {} };
}

const where = (s: RunState) => `stage ${s.stage + 1}, ${s.phase} phase${s.phase === 'done' ? '' : `, step ${s.progress}`}`;

/** Reads and validates a state.json; the error names the file, what is wrong with it and what to do. */
export function readRunState(path: string, remedy: string): RunState {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw new Error(`cannot read the run state ${path}: ${(err as Error).message}. ${remedy}`);
  }
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (err) {
    throw new Error(`the run state ${path} is damaged (not JSON: ${(err as Error).message}). ${remedy}`);
  }
  const format = (raw as { format?: unknown } | null)?.format;
  if (format !== RUN_STATE_FORMAT) {
    throw new Error(`${path} is not a run state this version reads (format ${format === undefined ? 'missing' : JSON.stringify(format)}, expected '${RUN_STATE_FORMAT}'): it was written by another program or version. ${remedy}`);
  }
  const parsed = runStateSchema.safeParse(raw);
  if (!parsed.success) {
    const issues = parsed.error.issues.slice(0, 3).map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`).join('; ');
    throw new Error(`the run state ${path} is damaged (${issues}). ${remedy}`);
  }
  return parsed.data;
}

export const sha256 = (bytes: Uint8Array) => createHash('sha256').update(bytes).digest('hex');

/** Checkpoint generations under a run's checkpoints/ folder. */
export class Checkpoints {
  readonly statePath: string;
  constructor(
    readonly dir: string,
    /** The train command's options, for the messages that tell how to continue. */
    private readonly command: string,
  ) {
    this.statePath = join(dir, 'state.json');
  }

  genDir(g: number): string {
    return join(this.dir, String(g));
  }

  get exists(): boolean {
    return existsSync(this.statePath);
  }

  /**
   * Writes generation `state.generation + 1` (its files, then its state.json, then the commit
   * point) and removes the generations before the previous one. `state` is updated in place.
   */
  commit(state: RunState, files: Map<string, Uint8Array>): void {
    const g = state.generation + 1;
    const dir = this.genDir(g);
    rmSync(dir, { recursive: true, force: true }); // what a crash left of an uncommitted g
    const hashes: Record<string, string> = {};
    for (const [name, bytes] of files) {
      writeFileAtomic(join(dir, name), bytes);
      hashes[name] = sha256(bytes);
    }
    const next: RunState = { ...state, generation: g, files: hashes };
    const text = JSON.stringify(next, null, 2) + '\n';
    writeFileAtomic(join(dir, 'state.json'), text);
    writeFileAtomic(this.statePath, text); // the commit point
    Object.assign(state, next);
    for (const name of readdirSync(this.dir)) {
      if (/^\d+$/.test(name) && Number(name) < g - 1) rmSync(join(this.dir, name), { recursive: true, force: true });
    }
  }

  /**
   * The state to resume from, with every file of its generation verified against the SHA-256
   * recorded when it was committed: the newest generation, or `generation` when given.
   */
  open(generation?: number): RunState {
    const fresh = `Start over with \`${this.command} --fresh\` (deletes the run).`;
    if (generation === undefined) {
      if (!this.exists) throw new Error(`nothing to resume: ${this.statePath} does not exist (the run never reached its first checkpoint, or this is not the folder of that run). Run the same command without --resume to start it.`);
      const state = readRunState(this.statePath, this.previousHint(null, fresh));
      const bad = this.verify(state);
      if (bad) throw new Error(`${bad} ${this.previousHint(state.generation, fresh)}`);
      return state;
    }
    const path = join(this.genDir(generation), 'state.json');
    if (!existsSync(path)) throw new Error(`--generation ${generation}: ${this.dir} has no generation ${generation} (kept: ${this.generations().join(', ') || 'none'}).`);
    const state = readRunState(path, fresh);
    const bad = this.verify(state);
    if (bad) throw new Error(`${bad} ${fresh}`);
    return state;
  }

  /** Loads a file of a verified generation. */
  path(state: RunState, name: string): string {
    return join(this.genDir(state.generation), name);
  }

  /** Generations on disk, newest first. */
  generations(): number[] {
    if (!existsSync(this.dir)) return [];
    return readdirSync(this.dir).filter((n) => /^\d+$/.test(n)).map(Number).sort((a, b) => b - a);
  }

  /** A problem with a generation's files, or null when every file matches its recorded hash. */
  private verify(state: RunState): string | null {
    const dir = this.genDir(state.generation);
    for (const [name, expected] of Object.entries(state.files)) {
      const path = join(dir, name);
      if (!existsSync(path)) return `checkpoint file ${path} is missing (generation ${state.generation} recorded it at its commit point).`;
      const bytes = readFileSync(path);
      const actual = sha256(bytes);
      if (actual !== expected) return `checkpoint file ${path} is damaged: its SHA-256 is ${actual.slice(0, 16)}…, not the ${expected.slice(0, 16)}… recorded when generation ${state.generation} was committed (${bytes.length} bytes now).`;
    }
    return null;
  }

  /** Points at the newest verified generation older than `newerThan`, or at --fresh. */
  private previousHint(newerThan: number | null, fresh: string): string {
    for (const g of this.generations()) {
      if (newerThan !== null && g >= newerThan) continue;
      const path = join(this.genDir(g), 'state.json');
      if (!existsSync(path)) continue;
      try {
        const s = readRunState(path, '');
        if (s.generation === g && this.verify(s) === null) return `Generation ${g} (${where(s)}) is intact: continue from it with \`${this.command} --resume --generation ${g}\`, or start over with \`${this.command} --fresh\`.`;
      } catch {
        // not usable either; look further back
      }
    }
    return fresh;
  }
}

/** metrics.jsonl, appended row by row; a resume cuts it back to the last commit point's size. */
export class MetricsLog {
  constructor(readonly path: string) {}

  /** Cuts the log back to `bytes` (a resume), or empties it (a new run). */
  reset(bytes: number): void {
    if (!existsSync(this.path)) {
      if (bytes > 0) throw new Error(`${this.path} is missing, but the checkpoint recorded ${bytes} bytes of it: the metrics of the earlier part of the run are lost. Restore the file or start over with --fresh.`);
      return;
    }
    const size = statSync(this.path).size;
    if (size < bytes) throw new Error(`${this.path} holds ${size} bytes, but the checkpoint recorded ${bytes}: the file was cut or replaced. Restore it or start over with --fresh.`);
    truncateSync(this.path, bytes);
  }

  append(row: Record<string, unknown>): void {
    appendFile(this.path, JSON.stringify({ time: new Date().toISOString(), ...row }) + '\n');
  }

  get bytes(): number {
    return existsSync(this.path) ? statSync(this.path).size : 0;
  }
}

interface LockInfo {
  pid: number;
  host: string;
  startedAt: string;
}

/** How long a lock held from another host may go without a heartbeat before it counts as stale. */
const STALE_MS = 60_000;
const HEARTBEAT_MS = 10_000;

/**
 * run.lock in the run folder: one run at a time. The holder's pid, host and start time, and a
 * heartbeat (the file's mtime) so that a lock left by a process on another host (a container
 * that died) goes stale too. On this host a lock whose process is gone is stale at once.
 */
export class RunLock {
  private timer: NodeJS.Timeout | null = null;
  private constructor(readonly path: string) {}

  static acquire(dir: string, log: (line: string) => void): RunLock {
    const path = join(dir, 'run.lock');
    const me: LockInfo = { pid: process.pid, host: hostname(), startedAt: new Date().toISOString() };
    const text = JSON.stringify(me) + '\n';
    for (let attempt = 0; attempt < 2; attempt++) {
      try {
        const fd = openSync(path, 'wx');
        try {
          writeSync(fd, text);
        } finally {
          closeSync(fd);
        }
        const lock = new RunLock(path);
        lock.timer = setInterval(() => lock.beat(), HEARTBEAT_MS);
        lock.timer.unref();
        return lock;
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw explainWriteError(err, path, text.length);
      }
      const holder = readLock(path);
      const age = Date.now() - statSync(path).mtimeMs;
      // Same host: the process tells (a pid equal to ours is a dead earlier incarnation, as in a restarted container).
      const alive = holder && holder.host === me.host ? holder.pid !== process.pid && pidAlive(holder.pid) : age < STALE_MS;
      const who = holder ? `pid ${holder.pid} on ${holder.host}, started ${holder.startedAt}` : 'an unreadable lock';
      if (alive) {
        throw new Error(`${dir} is in use by another run (${who}; lock file ${path}). Wait for it to finish or stop it; use another --out or --seed for a second run.`);
      }
      log(`taking over the stale lock ${path} (${who}: ${holder && holder.host === me.host ? 'no such process' : `no heartbeat for ${Math.round(age / 1000)} s`})`);
      rmSync(path, { force: true });
    }
    throw new Error(`could not take the lock ${path}: another process took it at the same moment. Try again.`);
  }

  private beat(): void {
    try {
      const now = new Date();
      utimesSync(this.path, now, now);
    } catch {
      // a missing heartbeat only makes the lock look stale to other hosts sooner
    }
  }

  release(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    const holder = readLock(this.path);
    if (holder && holder.pid === process.pid && holder.host === hostname()) rmSync(this.path, { force: true });
  }
}

function readLock(path: string): LockInfo | null {
  try {
    const v = JSON.parse(readFileSync(path, 'utf8')) as LockInfo;
    return typeof v.pid === 'number' && typeof v.host === 'string' ? v : null;
  } catch {
    return null;
  }
}

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}
