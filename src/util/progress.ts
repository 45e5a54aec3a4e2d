// Progress on stderr, for downloads (bytes) and training phases (steps with ETA and losses): a
// line redrawn in place on a terminal; elsewhere (CI, logs) an occasional plain line.

import { formatBytes } from './fs.js';

export interface ProgressStream {
  write(s: string): unknown;
  isTTY?: boolean;
  columns?: number;
}

/** `#` for the done fraction, `.` for the rest. */
export function bar(frac: number, width: number): string {
  const filled = Math.round(Math.min(1, Math.max(0, frac)) * width);
  return '#'.repeat(filled) + '.'.repeat(width - filled);
}

export function formatDuration(s: number): string {
  if (s >= 3600) return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}m`;
  if (s >= 60) return `${Math.floor(s / 60)}m${String(Math.round(s % 60)).padStart(2, '0')}s`;
  return `${s.toFixed(0)}s`;
}

export function formatRate(bytesPerSecond: number): string {
  return `${formatBytes(Math.round(bytesPerSecond))}/s`;
}

/** Draws `text` in place of the previous line on a terminal (cut to its width). */
function redraw(stream: ProgressStream, text: string): void {
  stream.write(`\r${text.slice(0, (stream.columns ?? 160) - 1)}\x1b[K`);
}

// ---- downloads

export interface Progress {
  update(bytesSoFar: number): void;
  done(): void;
}

/** One line of download progress; pure, for tests and for both display modes. */
export function progressLine(label: string, bytes: number, total: number | undefined, seconds: number, width = 24): string {
  const rate = seconds > 0 ? formatRate(bytes / seconds) : '-';
  if (!total) return `${label} ${formatBytes(bytes)} ${rate}`;
  const frac = Math.min(1, bytes / total);
  const pct = `${Math.floor(frac * 100)}`.padStart(3);
  return `${label} [${bar(frac, width)}] ${pct}% ${formatBytes(bytes)}/${formatBytes(total)} ${rate}`;
}

/** Download progress: live at most every 100 ms on a terminal, else a line every 25 % or 10 s. */
export function createProgress(label: string, total: number | undefined, stream: ProgressStream = process.stderr, now: () => number = () => Date.now()): Progress {
  const start = now();
  const live = stream.isTTY === true;
  let lastDraw = start;
  let lastQuarter = 0;
  let last = 0;
  const seconds = () => (now() - start) / 1000;
  return {
    update(bytes: number) {
      last = bytes;
      const t = now();
      if (live) {
        if (t - lastDraw < 100) return;
        lastDraw = t;
        redraw(stream, progressLine(label, bytes, total, seconds()));
        return;
      }
      const quarter = total ? Math.floor((bytes / total) * 4) : 0;
      if ((quarter > lastQuarter && quarter < 4) || t - lastDraw >= 10_000) {
        lastQuarter = Math.max(lastQuarter, quarter);
        lastDraw = t;
        stream.write(`${progressLine(label, bytes, total, seconds())}\n`);
      }
    },
    done() {
      const line = progressLine(label, last, total ?? last, seconds());
      if (live) {
        redraw(stream, line);
        stream.write('\n');
      } else stream.write(`${line}\n`);
    },
  };
}

// ---- training phases

export interface PhaseBar {
  tick(done: number, values?: Record<string, number | undefined>): void;
  end(): void;
}

/** A training phase's bar with ETA and the current losses: live on a terminal, else a line every 5 s and at the end. `start`: steps already done (a resumed phase). */
export function phaseBar(label: string, total: number, stream: ProgressStream = process.stderr, start = 0): PhaseBar {
  const t0 = performance.now();
  const live = stream.isTTY === true;
  let lastLine = 0;
  const render = (done: number, values: Record<string, number | undefined> = {}) => {
    const elapsed = (performance.now() - t0) / 1000;
    const rate = (done - start) / Math.max(elapsed, 1e-9);
    const eta = rate > 0 ? (total - done) / rate : 0;
    const vals = Object.entries(values)
      .filter(([, v]) => v !== undefined && Number.isFinite(v))
      .map(([k, v]) => `${k} ${Math.abs(v!) >= 100 ? v!.toFixed(1) : v!.toFixed(3)}`)
      .join(' ');
    return `${label} [${bar(done / total, 20)}] ${done}/${total} ${formatDuration(elapsed)} eta ${formatDuration(eta)} ${vals}`;
  };
  return {
    tick(done, values) {
      const line = render(done, values);
      const now = performance.now();
      if (live) redraw(stream, line);
      else if (now - lastLine > 5000 || done === total) {
        stream.write(line + '\n');
        lastLine = now;
      }
    },
    end() {
      if (live) stream.write('\n');
    },
  };
}
