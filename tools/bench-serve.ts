// npm run bench:serve [-- --run results/<id>] [--duration 10] [--connections 8,64] [--n 1,16,64]
// Starts the server in a child process (so the load generator does not share its event loop),
// then measures GET /sample (random seeds, so every request runs the model) with autocannon,
// for each n and each connection count, and prints p50 / p99 latency, requests per second and
// the server's CPU time per request (all its threads, from /proc; robust to other load on the
// machine, unlike requests per second).

import { spawn, execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';

interface AutocannonResult {
  latency: { p50: number; p99: number; average: number };
  requests: { average: number; total: number };
  throughput: { average: number };
  non2xx: number;
  errors: number;
  timeouts: number;
}
type Autocannon = (options: { url: string; connections: number; duration: number; pipelining?: number }) => Promise<AutocannonResult>;
const autocannon = createRequire(import.meta.url)('autocannon') as Autocannon;

const HELP = `usage: npm run bench:serve -- [--run results/<run-id>] [--duration S] [--connections C,...] [--n N,...] [--backend node|web] [--task NAME] [--workers N]
Measures GET /sample?task=...&n=N (default n 1, 16 and 64) with autocannon against a server started
here, with each connection count (default 8 and 64).
--workers N is passed to the server (inference and PNG encoding on N worker threads; default the
server's: 1 with 2 or more cores, else 0).
Without --run it uses results/latest, or an untrained demo export of the same shapes if there is none.
'cpu ms/req' is the server process's CPU time (user + system, every thread) per request served,
read from /proc (Linux; '-' elsewhere); unlike req/s it holds when other jobs share the machine.`;

const { values: a } = parseArgs({
  options: {
    run: { type: 'string' },
    duration: { type: 'string', default: '10' },
    connections: { type: 'string', default: '8,64' },
    n: { type: 'string', default: '1,16,64' },
    backend: { type: 'string', default: 'node' },
    task: { type: 'string' },
    workers: { type: 'string' },
    help: { type: 'boolean', short: 'h' },
  },
});
if (a.help) {
  console.log(HELP);
  process.exit(0);
}
const duration = Number(a.duration);
const list = (text: string) => text.split(',').map(Number);
const connectionCounts = list(a.connections!);
const ns = list(a.n!);
const whole = (v: number) => Number.isInteger(v) && v > 0;
if (!(duration > 0) || !connectionCounts.every(whole) || !ns.every((n) => whole(n) && n <= 256)) {
  console.error(`error: --duration must be > 0 seconds, --connections whole numbers > 0 and --n whole numbers from 1 to 256, comma-separated (got ${a.duration}, ${a.connections}, ${a.n})\n${HELP}`);
  process.exit(2);
}
if (a.workers !== undefined && !/^\d+$/.test(a.workers)) {
  console.error(`error: --workers must be a whole number >= 0 (got '${a.workers}')\n${HELP}`);
  process.exit(2);
}

const root = new URL('../', import.meta.url).pathname;
let run = a.run ?? 'results/latest';
let demoDir: string | undefined;
if (a.run === undefined && !existsSync(join(root, run))) {
  demoDir = mkdtempSync(join(tmpdir(), 'bench-serve-'));
  run = demoDir;
  console.log(`no results/latest: benchmarking an untrained demo export (same shapes as the reference models) in ${demoDir}`);
  execFileSync(process.execPath, ['--import', 'tsx', 'tools/make-demo-export.ts', join(demoDir, 'export'), '--tasks', 'mnist,fashion'], { cwd: root, stdio: 'inherit' });
}

const server = spawn(process.execPath, ['--import', 'tsx', 'src/serve/main.ts', '--run', run, '--port', '0', '--host', '127.0.0.1', '--backend', a.backend!, '--drain-ms', '0', ...(a.workers !== undefined ? ['--workers', a.workers] : [])], { cwd: root, stdio: ['ignore', 'pipe', 'inherit'] });
const url = await new Promise<string>((resolve, reject) => {
  let out = '';
  let listening = false;
  server.stdout!.on('data', (d: Buffer) => {
    out += d;
    const m = /listening on (http:\/\/\S+)/.exec(out);
    if (m && !listening) {
      listening = true;
      // The server's own line says where inference runs (how many worker threads).
      const serving = /^serving run .*$/m.exec(out);
      if (serving) console.log(serving[0]);
      resolve(m[1]!);
    }
  });
  server.once('exit', (code) => reject(new Error(`the server exited (${code}) before listening:\n${out}`)));
});

let clockTicks = 100;
try {
  clockTicks = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' })) || 100;
} catch {
  // getconf missing: Linux's USER_HZ is 100 nearly everywhere
}
/** The server's CPU time so far in ms (utime + stime of all its threads), or undefined without /proc. */
function serverCpuMs(): number | undefined {
  try {
    const stat = readFileSync(`/proc/${server.pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' '); // the name may hold spaces
    return ((Number(fields[11]) + Number(fields[12])) * 1000) / clockTicks;
  } catch {
    return undefined;
  }
}

try {
  const models = (await (await fetch(`${url}/v1/models`)).json()) as { run: string; backend: string; tasks: { name: string }[] };
  const task = a.task ?? models.tasks[0]!.name;
  console.log(`run ${models.run}, backend ${models.backend}, task ${task}; ${cpus().length} CPUs (${cpus()[0]?.model.trim()}), Node ${process.version}`);
  console.log(`autocannon: ${duration} s per case, random seed per request (every request runs the model)\n`);
  const rows: string[][] = [['case', 'connections', 'p50 ms', 'p99 ms', 'mean ms', 'req/s', 'samples/s', 'cpu ms/req', 'non-2xx', 'errors']];
  for (const n of ns) {
    for (const connections of connectionCounts) {
      const target = `${url}/sample?task=${encodeURIComponent(task)}&n=${n}`;
      await autocannon({ url: target, connections, duration: 2 }); // warm-up
      const cpuBefore = serverCpuMs();
      const r = await autocannon({ url: target, connections, duration });
      const cpuAfter = serverCpuMs();
      const cpu = cpuBefore !== undefined && cpuAfter !== undefined && r.requests.total > 0 ? ((cpuAfter - cpuBefore) / r.requests.total).toFixed(3) : '-';
      rows.push([`n=${n}`, String(connections), String(r.latency.p50), String(r.latency.p99), r.latency.average.toFixed(1), r.requests.average.toFixed(0), (r.requests.average * n).toFixed(0), cpu, String(r.non2xx), String(r.errors + r.timeouts)]);
    }
  }
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((row) => row[i]!.length)));
  for (const row of rows) console.log(row.map((cell, i) => (i === 0 ? cell.padEnd(widths[i]!) : cell.padStart(widths[i]!))).join('  '));
} finally {
  server.kill('SIGTERM');
  await new Promise((resolve) => server.once('exit', resolve));
  if (demoDir) rmSync(demoDir, { recursive: true, force: true });
}
