/**
 * A download progress display on stderr: a live bar when stderr is a TTY,
 * otherwise an occasional plain line (every 25 % or 10 s).
 */

export interface Progress {
  update(bytesSoFar: number): void;
  done(): void;
}

export interface ProgressStream {
  write(s: string): unknown;
  isTTY?: boolean;
  columns?: number;
}

export function formatBytes(n: number): string {
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} kB`;
  return `${(n / (1024 * 1024)).toFixed(1)} MB`;
}

export function formatRate(bytesPerSecond: number): string {
  return `${formatBytes(Math.round(bytesPerSecond))}/s`;
}

/** One line of progress text; pure, for tests and for both display modes. */
export function progressLine(label: string, bytes: number, total: number | undefined, seconds: number, width = 24): string {
  const rate = seconds > 0 ? formatRate(bytes / seconds) : '-';
  if (!total) return `${label} ${formatBytes(bytes)} ${rate}`;
  const frac = Math.min(1, bytes / total);
  const filled = Math.round(frac * width);
  const bar = '#'.repeat(filled) + '.'.repeat(width - filled);
  const pct = `${Math.floor(frac * 100)}`.padStart(3);
  return `${label} [${bar}] ${pct}% ${formatBytes(bytes)}/${formatBytes(total)} ${rate}`;
}

export function createProgress(
  label: string,
  total: number | undefined,
  stream: ProgressStream = process.stderr,
  now: () => number = () => Date.now(),
): Progress {
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
        stream.write(`\r${progressLine(label, bytes, total, seconds())}\x1b[K`);
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
      stream.write(live ? `\r${line}\x1b[K\n` : `${line}\n`);
    },
  };
}
