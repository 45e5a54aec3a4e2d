// A progress bar per training phase with ETA and the current losses. Live on a terminal;
// elsewhere (CI, logs) a plain line every few seconds.

export interface PhaseBar {
  tick(done: number, values?: Record<string, number | undefined>): void;
  end(): void;
}

const fmtTime = (s: number) => (s >= 3600 ? `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}m` : s >= 60 ? `${Math.floor(s / 60)}m${String(Math.round(s % 60)).padStart(2, '0')}s` : `${s.toFixed(0)}s`);

export function phaseBar(label: string, total: number, stream: NodeJS.WriteStream = process.stderr, start = 0): PhaseBar {
  const t0 = performance.now();
  const live = !!stream.isTTY;
  let lastLine = 0;
  let last = '';
  const render = (done: number, values: Record<string, number | undefined> = {}) => {
    const elapsed = (performance.now() - t0) / 1000;
    const rate = (done - start) / Math.max(elapsed, 1e-9);
    const eta = rate > 0 ? (total - done) / rate : 0;
    const frac = Math.min(1, done / total);
    const width = 20;
    const bar = '#'.repeat(Math.round(frac * width)).padEnd(width, '.');
    const vals = Object.entries(values)
      .filter(([, v]) => v !== undefined && Number.isFinite(v))
      .map(([k, v]) => `${k} ${Math.abs(v!) >= 100 ? v!.toFixed(1) : v!.toFixed(3)}`)
      .join(' ');
    return `${label} [${bar}] ${done}/${total} ${fmtTime(elapsed)} eta ${fmtTime(eta)} ${vals}`;
  };
  return {
    tick(done, values) {
      last = render(done, values);
      const now = performance.now();
      if (live) stream.write(`\r${last.slice(0, (stream.columns ?? 160) - 1)}\x1b[K`);
      else if (now - lastLine > 5000 || done === total) {
        stream.write(last + '\n');
        lastLine = now;
      }
    },
    end() {
      if (live) stream.write('\n');
    },
  };
}
