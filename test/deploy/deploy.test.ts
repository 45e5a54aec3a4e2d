// Deployment: the Kubernetes manifests (parsed, their key fields checked, the sweep Job's
// command run with sh) and the Dockerfile (built and run with podman: the server on a read-only
// run folder and root file system, healthy, drained by SIGTERM; training with the sweep Job's
// command onto a writable volume).
//
// No image registry is reachable here, so the image is built on a local stand-in for
// node:20-bookworm-slim made from this machine's node (test/deploy/local-node-base.sh); the
// build itself reaches the npm registry like any `docker build`. Needs root podman (CI installs
// podman and runc), python3-yaml and dataset-fashion-mnist; a missing one fails with its name.

import { execFileSync, spawn, spawnSync, type SpawnSyncReturns } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const K8S = join(ROOT, 'deploy', 'k8s');
const FASHION_DIR = '/usr/share/datasets/fashion-mnist';

/* eslint-disable @typescript-eslint/no-explicit-any */
type Doc = Record<string, any>;

/** Every document of a YAML file, parsed by PyYAML (no YAML parser among the npm dependencies). */
function yamlDocs(file: string): Doc[] {
  const r = spawnSync('/usr/bin/python3', ['-c', 'import json, sys, yaml; print(json.dumps([d for d in yaml.safe_load_all(open(sys.argv[1])) if d is not None]))', file], { encoding: 'utf8' });
  if (r.error || r.status !== 0) {
    throw new Error(`parsing ${file} needs /usr/bin/python3 with PyYAML (apt-get install python3-yaml): ${r.error?.message ?? r.stderr}`);
  }
  return JSON.parse(r.stdout) as Doc[];
}

const byKind = (docs: Doc[], kind: string): Doc => {
  const d = docs.find((x) => x.kind === kind);
  if (!d) throw new Error(`no ${kind} among ${docs.map((x) => x.kind).join(', ')}`);
  return d;
};

const optionValue = (args: string[], name: string): string | undefined => {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : undefined;
};

/** Kubernetes' $(VAR) expansion of command and args ($$ escapes; unknown names stay as they are). */
const k8sExpand = (s: string, env: Record<string, string>) =>
  s.replace(/\$\$|\$\(([A-Za-z_][A-Za-z0-9_]*)\)/g, (m, name?: string) => (m === '$$' ? '$' : name !== undefined && name in env ? env[name]! : m));

const serve = yamlDocs(join(K8S, 'serve.yaml'));
const sweep = yamlDocs(join(K8S, 'sweep-job.yaml'));
const deployment = byKind(serve, 'Deployment');
const pod = deployment.spec.template.spec;
const server = pod.containers[0];
const job = byKind(sweep, 'Job');
const jobPod = job.spec.template.spec;
const trainer = jobPod.containers[0];
const sweepLines = (byKind(sweep, 'ConfigMap').data['sweep.txt'] as string).split('\n').filter((l) => l.trim() && !l.trimStart().startsWith('#'));
const script: string = trainer.command[2];

describe('deploy/k8s/serve.yaml', () => {
  it('probes /healthz on the named port, and a grace period longer than drain + request timeout', () => {
    expect(pod.containers).toHaveLength(1);
    const port = server.ports.find((p: Doc) => p.containerPort === 3000);
    for (const probe of [server.readinessProbe, server.livenessProbe]) {
      expect(probe.httpGet.path).toBe('/healthz');
      expect(probe.httpGet.port).toBe(port.name);
    }
    const args: string[] = [...server.command, ...server.args];
    expect(args.slice(0, 2)).toEqual(['node', '/app/dist/serve.js']);
    const drainS = Number(optionValue(args, '--drain-ms') ?? 3000) / 1000;
    const timeoutS = Number(optionValue(args, '--timeout-ms') ?? 10000) / 1000;
    expect(pod.terminationGracePeriodSeconds).toBeGreaterThan(drainS + timeoutS);
    // Liveness outlasts the drain period, during which /healthz answers 503.
    expect(server.livenessProbe.periodSeconds * server.livenessProbe.failureThreshold).toBeGreaterThan(drainS + timeoutS);
    expect(server.lifecycle?.preStop).toBeUndefined(); // the server drains by itself
    expect(deployment.spec.replicas).toBeGreaterThan(1);
    expect(server.resources.limits.cpu).toBeDefined();
  });

  it('runs as non-root on a read-only root, with the run folder on a read-only mount', () => {
    expect(pod.securityContext.runAsNonRoot).toBe(true);
    expect(pod.securityContext.runAsUser).toBeGreaterThan(0);
    expect(server.securityContext.readOnlyRootFilesystem).toBe(true);
    expect(server.securityContext.allowPrivilegeEscalation).toBe(false);
    const run = optionValue(server.args, '--run')!;
    const mount = server.volumeMounts.find((m: Doc) => run.startsWith(m.mountPath + '/'));
    expect(mount, `no volume mounted above --run ${run}`).toBeDefined();
    expect(mount.readOnly).toBe(true);
    const volume = pod.volumes.find((v: Doc) => v.name === mount.name);
    expect(volume.persistentVolumeClaim.readOnly).toBe(true);
    // The claim the sweep writes, at the path it wrote under (results/<i>/latest is an absolute link).
    expect(volume.persistentVolumeClaim.claimName).toBe(byKind(sweep, 'PersistentVolumeClaim').metadata.name);
    expect(mount.mountPath).toBe(trainer.workingDir);
  });

  it('has a Service and a PodDisruptionBudget that select the pods', () => {
    const labels = deployment.spec.template.metadata.labels;
    expect(deployment.spec.selector.matchLabels).toEqual(labels);
    const service = byKind(serve, 'Service');
    expect(service.spec.selector).toEqual(labels);
    expect(service.spec.ports[0].targetPort).toBe(server.ports[0].name);
    expect(byKind(serve, 'PodDisruptionBudget').spec.selector.matchLabels).toEqual(labels);
  });
});

describe('deploy/k8s/sweep-job.yaml', () => {
  it('is an Indexed Job with one completion per configuration, retried per index, resuming', () => {
    expect(job.spec.completionMode).toBe('Indexed');
    expect(job.spec.completions).toBe(sweepLines.length);
    expect(job.spec.parallelism).toBeGreaterThan(0);
    expect(job.spec.parallelism).toBeLessThanOrEqual(job.spec.completions);
    expect(job.spec.backoffLimitPerIndex).toBeGreaterThan(0);
    expect(jobPod.restartPolicy).toBe('Never');
    expect(script).toContain('--resume-if-any');
    expect(script).toContain('exec node /app/dist/train.js');
    expect(job.spec.podFailurePolicy.rules[1].onExitCodes.containerName).toBe(trainer.name);
  });

  it('runs as non-root on a read-only root, writing only to the volume it works in', () => {
    expect(jobPod.securityContext.runAsNonRoot).toBe(true);
    expect(jobPod.securityContext.runAsUser).toBeGreaterThan(0);
    expect(jobPod.securityContext.fsGroup).toBe(jobPod.securityContext.runAsGroup);
    expect(trainer.securityContext.readOnlyRootFilesystem).toBe(true);
    const data = trainer.volumeMounts.find((m: Doc) => m.mountPath === trainer.workingDir);
    expect(data, 'datasets/ is written under the working directory: it must be the volume').toBeDefined();
    expect(data.readOnly).toBeFalsy();
    const claim = jobPod.volumes.find((v: Doc) => v.name === data.name).persistentVolumeClaim.claimName;
    expect(byKind(sweep, 'PersistentVolumeClaim').spec.accessModes).toContain('ReadWriteMany');
    expect(claim).toBe(byKind(sweep, 'PersistentVolumeClaim').metadata.name);
    const config = trainer.volumeMounts.find((m: Doc) => script.includes(m.mountPath + '/sweep.txt'));
    expect(jobPod.volumes.find((v: Doc) => v.name === config.name).configMap.name).toBe(byKind(sweep, 'ConfigMap').metadata.name);
  });

  it('index i runs line i of sweep.txt (sh), and an index beyond the list fails with exit code 3', () => {
    const env = Object.fromEntries(trainer.env.map((e: Doc) => [e.name, e.value ?? '2']));
    expect(k8sExpand(script, { ...env, JOB_COMPLETION_INDEX: '0' })).toBe(script); // no $(VAR) Kubernetes would replace
    const dir = mkdtempSync(join(tmpdir(), 'sweep-sh-'));
    try {
      mkdirSync(join(dir, 'bin'));
      writeFileSync(join(dir, 'bin', 'node'), '#!/bin/sh\nprintf "%s\\n" "$@"\n');
      chmodSync(join(dir, 'bin', 'node'), 0o755);
      writeFileSync(join(dir, 'sweep.txt'), byKind(sweep, 'ConfigMap').data['sweep.txt']);
      const mount = trainer.volumeMounts.find((m: Doc) => script.includes(m.mountPath + '/sweep.txt')).mountPath as string;
      const local = script.replaceAll(mount + '/', dir + '/');
      const run = (index: number) =>
        spawnSync('sh', ['-c', local], { encoding: 'utf8', env: { ...process.env, ...env, CPUS: '2', JOB_COMPLETION_INDEX: String(index), PATH: `${join(dir, 'bin')}:${process.env.PATH}` } });
      sweepLines.forEach((line, i) => {
        const r = run(i);
        expect(r.status, r.stderr).toBe(0);
        expect(r.stdout.split('\n').filter(Boolean)).toEqual([`sweep index ${i}: ${line.trim()}`, '/app/dist/train.js', '--threads', '2', ...line.trim().split(/\s+/), '--out', `/data/results/${i}`, '--resume-if-any']);
      });
      const beyond = run(sweepLines.length);
      expect(beyond.status).toBe(3);
      expect(beyond.stderr).toContain(`sweep.txt has only ${sweepLines.length} configurations`);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('Dockerfile', () => {
  const text = readFileSync(join(ROOT, 'Dockerfile'), 'utf8');
  it('builds on the official Node 20 image by default, runs as a numeric non-root user, serves on 3000 with a health check', () => {
    expect(text).toMatch(/^ARG NODE_IMAGE=docker\.io\/library\/node:20-bookworm-slim$/m);
    expect(text.match(/^FROM /gm)).toHaveLength(2);
    expect(text).toMatch(/^USER 1000:1000$/m);
    expect(text).toMatch(/^WORKDIR \/data$/m); // where training writes datasets/ and results/
    expect(text).toMatch(/^EXPOSE 3000$/m);
    expect(text).toMatch(/^HEALTHCHECK .*\n? *CMD \["node", "-e", ".*\/healthz/m);
    expect(text).toMatch(/^CMD \["node", "\/app\/dist\/serve\.js", "--run", "\/run-data"\]$/m);
    const ignore = readFileSync(join(ROOT, '.dockerignore'), 'utf8').split('\n');
    for (const p of ['node_modules', 'dist', 'results', 'datasets', '.git']) expect(ignore).toContain(p);
  });
});

// ---- the image, built and run with podman ----

const tag = `test-${process.pid}`;
const BASE = `localhost/lifelong-node-base:${tag}`;
const IMAGE = `localhost/lifelong-gen:${tag}`;
const VOLUME = `lifelong-data-${tag}`;
const containers: string[] = [];
const volumes: string[] = [];
let demoRun = '';
const dirs: string[] = [];
/** Options that make podman work on this machine: a global --runtime, and --ulimit for run and build. */
let runtime: string[] = [];
let ulimits: string[] = [];

const podman = (args: string[], opts: { timeout?: number } = {}): SpawnSyncReturns<string> =>
  spawnSync('podman', [...runtime, ...args], { encoding: 'utf8', timeout: opts.timeout ?? 120_000, maxBuffer: 64 << 20 });

function ok(r: SpawnSyncReturns<string>, what: string): string {
  if (r.error || r.status !== 0) throw new Error(`${what} failed (${r.error?.message ?? `exit ${r.status}`}):\n${r.stdout}\n${r.stderr}`.slice(-6000));
  return r.stdout;
}

/** This process's hard limit (podman as root asks for more than an unprivileged container host may give). */
function hardLimit(name: string): number {
  const line = readFileSync('/proc/self/limits', 'utf8').split('\n').find((l) => l.startsWith(name));
  const v = line?.trim().split(/\s{2,}/)[2];
  return v && /^\d+$/.test(v) ? Number(v) : 1 << 20;
}

/**
 * The first podman configuration that starts a container: the default runtime first, then runc
 * (crun 1.8 refuses a cgroup v1 host whose v2 hierarchy holds a controller, "hybrid mode"),
 * each with the default limits and then with the host's own.
 */
function choosePodmanOptions(): void {
  const limits = ['--ulimit', `nofile=${hardLimit('Max open files')}:${hardLimit('Max open files')}`, '--ulimit', `nproc=${Math.min(hardLimit('Max processes'), 32768)}:${Math.min(hardLimit('Max processes'), 32768)}`];
  const errors: string[] = [];
  for (const rt of [[], ['--runtime', 'runc']]) {
    for (const ul of [[], limits]) {
      const r = spawnSync('podman', [...rt, 'run', '--rm', ...ul, BASE, 'node', '-e', 'process.exit(0)'], { encoding: 'utf8', timeout: 60_000 });
      if (r.status === 0) {
        runtime = rt;
        ulimits = ul;
        return;
      }
      errors.push(`podman ${[...rt, 'run', ...ul].join(' ')}: ${(r.error?.message ?? r.stderr).trim().split('\n').pop()}`);
    }
  }
  throw new Error(`podman cannot start a container on this machine:\n${errors.join('\n')}\n(on a cgroup v1 host: apt-get install runc)`);
}

function requireTools(): void {
  const missing: string[] = [];
  if (spawnSync('podman', ['--version']).status !== 0) missing.push('podman (apt-get install podman runc)');
  if (process.getuid?.() !== 0) missing.push('root (the test builds and runs images with root podman)');
  if (!existsSync(join(FASHION_DIR, 'train-images-idx3-ubyte.gz'))) {
    missing.push(`${FASHION_DIR} (apt-get install dataset-fashion-mnist), mounted into the training container`);
  }
  if (missing.length) throw new Error(`the container test needs: ${missing.join('; ')}. .ci/run installs them.`);
}

async function waitFor<T>(what: string, ms: number, probe: () => Promise<T | undefined>): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await probe().catch(() => undefined);
    if (v !== undefined) return v;
    if (Date.now() > end) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

describe('the image (podman)', () => {
  beforeAll(() => {
    requireTools();
    const t0 = performance.now();
    ok(spawnSync('bash', [join(ROOT, 'test/deploy/local-node-base.sh'), BASE], { encoding: 'utf8', timeout: 120_000 }), 'local-node-base.sh');
    choosePodmanOptions();
    ok(podman(['build', '--quiet', '--layers=false', '--format', 'docker', ...ulimits, '--build-arg', `NODE_IMAGE=${BASE}`, '-t', IMAGE, ROOT], { timeout: 540_000 }), 'podman build');
    console.log(`container test: base image and podman build in ${((performance.now() - t0) / 1000).toFixed(0)} s (podman ${[...runtime, ...ulimits].join(' ') || 'defaults'})`);
    demoRun = mkdtempSync(join(tmpdir(), 'deploy-run-'));
    dirs.push(demoRun);
    execFileSync(process.execPath, ['--import', 'tsx', 'tools/make-demo-export.ts', join(demoRun, 'export')], { cwd: ROOT, stdio: 'pipe' });
    chmodSync(demoRun, 0o755);
  }, 600_000);

  afterAll(() => {
    for (const c of containers) spawnSync('podman', [...runtime, 'rm', '-f', '-t', '0', c], { encoding: 'utf8' });
    for (const v of volumes) spawnSync('podman', ['volume', 'rm', '-f', v], { encoding: 'utf8' });
    spawnSync('podman', ['rmi', '-f', IMAGE, BASE], { encoding: 'utf8' });
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
  }, 120_000);

  it('serves a read-only run folder from a read-only root as uid 1000: healthy, samples, drains on SIGTERM, exits 0', { timeout: 180_000 }, async () => {
    const name = `lifelong-serve-${tag}`;
    containers.push(name);
    // The image's own command: node /app/dist/serve.js --run /run-data (drain 3 s).
    ok(podman(['run', '-d', '--name', name, ...ulimits, '--read-only', '-v', `${demoRun}:/run-data:ro`, '-p', '127.0.0.1::3000', IMAGE]), 'podman run');
    const hostPort = ok(podman(['port', name, '3000/tcp']), 'podman port').trim().split('\n')[0]!;
    const url = `http://${hostPort}`;
    await waitFor('/healthz 200', 60_000, async () => ((await fetch(`${url}/healthz`)).status === 200 ? true : undefined));

    const res = await fetch(`${url}/sample?task=mnist&seed=1`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('image/png');
    expect([...new Uint8Array(await res.arrayBuffer()).subarray(0, 4)]).toEqual([0x89, 0x50, 0x4e, 0x47]);
    // The Dockerfile's HEALTHCHECK command, run in the container; the server's user.
    const health = podman(['healthcheck', 'run', name]);
    expect(health.status, health.stderr).toBe(0);
    expect(ok(podman(['exec', name, 'node', '-p', 'process.getuid() + ":" + process.getgid()']), 'podman exec').trim()).toBe('1000:1000');

    // podman stop sends SIGTERM: /healthz turns 503 while serving goes on, then node exits 0.
    const t0 = performance.now();
    const stop = spawn('podman', [...runtime, 'stop', '-t', '30', name], { stdio: 'ignore' });
    const stopped = new Promise<number | null>((r) => stop.on('exit', r));
    await waitFor('/healthz 503', 10_000, async () => ((await fetch(`${url}/healthz`)).status === 503 ? true : undefined));
    expect((await fetch(`${url}/sample?task=fashion&seed=2`)).status).toBe(200);
    expect(await stopped).toBe(0);
    const stopSeconds = (performance.now() - t0) / 1000;
    expect(stopSeconds).toBeLessThan(25); // drained and exited by itself, not killed at the 30 s timeout
    expect(ok(podman(['inspect', name, '--format', '{{.State.ExitCode}}']), 'podman inspect').trim()).toBe('0');
    const logs = podman(['logs', name]);
    expect(logs.stdout + logs.stderr).toContain('SIGTERM: draining for 3000 ms');
    expect(logs.stdout + logs.stderr).not.toMatch(/telemetry|EROFS|read-only file system/i);
  });

  it("trains with the sweep Job's command on a new named volume at /data, with a read-only root", { timeout: 300_000 }, () => {
    const config = mkdtempSync(join(tmpdir(), 'deploy-sweep-'));
    dirs.push(config);
    chmodSync(config, 0o755);
    // A new named volume takes the ownership of the image's /data (uid 1000), as fsGroup gives the Job's.
    volumes.push(VOLUME);
    ok(podman(['volume', 'create', VOLUME]), 'podman volume create');
    const tiny = 'teacher.train.iterations=2 student.train.steps=2 eval.featureNetSteps=20 teacher.experts.fidSamples=32 eval.samples=64';
    writeFileSync(join(config, 'sweep.txt'), `# test sweep\n\n--preset smoke --seed 5 ${tiny}\n--preset smoke --seed 6 ${tiny}\n`);
    const configMount = trainer.volumeMounts.find((m: Doc) => script.includes(m.mountPath + '/sweep.txt')).mountPath as string;
    const env = trainer.env.flatMap((e: Doc) => ['-e', `${e.name}=${e.value ?? '1'}`]);
    const name = `lifelong-train-${tag}`;
    containers.push(name);
    const r = podman(
      ['run', '--name', name, ...ulimits, '--read-only', '-w', trainer.workingDir, '-v', `${VOLUME}:${trainer.workingDir}`, '-v', `${config}:${configMount}:ro`, '-v', `${FASHION_DIR}:${FASHION_DIR}:ro`,
        ...env, '-e', 'JOB_COMPLETION_INDEX=1', IMAGE, ...trainer.command],
      { timeout: 280_000 },
    );
    const log = r.stdout + r.stderr;
    expect(r.status, log.slice(-4000)).toBe(0);
    const data = ok(podman(['volume', 'inspect', VOLUME, '--format', '{{.Mountpoint}}']), 'podman volume inspect').trim();
    expect(log).toContain('sweep index 1: --preset smoke --seed 6');
    expect(log).toMatch(/Fashion-MNIST: using Debian package dataset-fashion-mnist/);
    const out = join(data, 'results', '1');
    const runs = readdirSync(out).filter((f) => f !== 'latest');
    expect(runs).toHaveLength(1);
    expect(runs[0]).toMatch(/^smoke-mnist_fashion-s6-/);
    expect(existsSync(join(out, runs[0]!, 'export', 'manifest.json'))).toBe(true);
    for (const d of ['mnist', 'fashion', 'features']) expect(existsSync(join(data, 'datasets', d)), `datasets/${d} on the volume`).toBe(true);
  });
});
