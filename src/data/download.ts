/**
 * HTTP(S) download of one file to disk: streamed to a temp file next to the
 * target, hashed on the way, verified, then renamed into place. A partial or
 * unverified download never lands under the final name.
 */
import { createWriteStream, promises as fs, type WriteStream } from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import { createHash } from 'node:crypto';
import { gunzipSync } from 'node:zlib';
import { sha256Hex, tempPathFor, removeQuietly } from './fsutil.ts';
import { createProgress, type ProgressStream } from '../util/progress.js';

export type DownloadFailure = 'network' | 'timeout' | 'http' | 'checksum';

export class DownloadError extends Error {
  constructor(
    readonly url: string,
    readonly kind: DownloadFailure,
    message: string,
  ) {
    super(message);
    this.name = 'DownloadError';
  }
}

export interface Expected {
  /** SHA-256 of the file as served. */
  sha256: string;
  /** SHA-256 of its gunzipped content; accepted too (a mirror may re-compress). */
  rawSha256?: string;
  /** Expected size, for the progress bar when the server sends no length. */
  size?: number;
}

export interface DownloadOptions {
  expected: Expected;
  /** Time allowed until response headers arrive (connect + first byte). Default 10 s. */
  connectTimeoutMs?: number;
  /** Time allowed without any data once the transfer has started. Default 30 s. */
  idleTimeoutMs?: number;
  maxRedirects?: number;
  label?: string;
  /** Progress output; null for none. Default: process.stderr. */
  progress?: ProgressStream | null;
}

export interface DownloadResult {
  url: string;
  bytes: number;
  sha256: string;
  /** Which checksum matched. */
  verifiedBy: 'sha256' | 'rawSha256';
}

/** Downloads `url` to `dest` (atomic), verifying the checksum. Throws `DownloadError`. */
export async function downloadFile(url: string, dest: string, opts: DownloadOptions): Promise<DownloadResult> {
  const tmp = tempPathFor(dest);
  try {
    const { bytes, sha256, finalUrl } = await fetchToFile(url, tmp, opts, opts.maxRedirects ?? 5);
    const verifiedBy = await verifyDownloaded(tmp, sha256, opts.expected, url);
    await fs.rename(tmp, dest);
    return { url: finalUrl, bytes, sha256, verifiedBy };
  } catch (e) {
    await removeQuietly(tmp);
    throw e;
  }
}

async function verifyDownloaded(tmp: string, sha256: string, expected: Expected, url: string): Promise<'sha256' | 'rawSha256'> {
  if (sha256 === expected.sha256) return 'sha256';
  if (expected.rawSha256) {
    try {
      const raw = gunzipSync(await fs.readFile(tmp));
      if (sha256Hex(raw) === expected.rawSha256) return 'rawSha256';
    } catch {
      // not gzip or corrupt: falls through to the mismatch error
    }
  }
  const name = url.split('/').pop();
  throw new DownloadError(
    url,
    'checksum',
    `Checksum mismatch for ${name} from ${url}: expected SHA-256 ${expected.sha256}, got ${sha256}. ` +
      'The downloaded file was removed. The host may serve a damaged or different file; try again later or another mirror.',
  );
}

function fetchToFile(
  url: string,
  tmp: string,
  opts: DownloadOptions,
  redirectsLeft: number,
): Promise<{ bytes: number; sha256: string; finalUrl: string }> {
  const connectMs = opts.connectTimeoutMs ?? 10_000;
  const idleMs = opts.idleTimeoutMs ?? 30_000;
  const client = url.startsWith('https:') ? https : http;
  return new Promise((resolve, reject) => {
    let settled = false;
    let out: WriteStream | null = null;
    const fail = (e: DownloadError) => {
      if (settled) return;
      settled = true;
      clearTimeout(connectTimer);
      req.destroy();
      out?.destroy();
      reject(e);
    };
    const req = client.get(url, { headers: { 'user-agent': 'lifelong-gen-downloader' } }, (res) => {
      clearTimeout(connectTimer);
      const status = res.statusCode ?? 0;
      if (status >= 300 && status < 400 && res.headers.location) {
        res.resume();
        if (redirectsLeft <= 0) return fail(new DownloadError(url, 'http', `Too many redirects fetching ${url}`));
        const next = new URL(res.headers.location, url).toString();
        settled = true;
        fetchToFile(next, tmp, opts, redirectsLeft - 1).then(resolve, reject);
        return;
      }
      if (status !== 200) {
        res.resume();
        return fail(new DownloadError(url, 'http', `HTTP ${status} fetching ${url}`));
      }
      const lenHeader = Number(res.headers['content-length']);
      const total = Number.isFinite(lenHeader) && lenHeader > 0 ? lenHeader : opts.expected.size;
      const progress = opts.progress === null ? null : createProgress(opts.label ?? url, total, opts.progress ?? process.stderr);
      const hash = createHash('sha256');
      const file = createWriteStream(tmp);
      out = file;
      let bytes = 0;
      res.on('data', (chunk: Buffer) => {
        bytes += chunk.length;
        hash.update(chunk);
        progress?.update(bytes);
      });
      res.on('aborted', () => fail(new DownloadError(url, 'network', `Connection closed early fetching ${url} after ${bytes} bytes`)));
      res.on('error', (e) => fail(new DownloadError(url, 'network', `Error reading ${url}: ${e.message}`)));
      file.on('error', (e) => fail(new DownloadError(url, 'network', `Cannot write ${tmp}: ${e.message}`)));
      file.on('close', () => {
        if (settled) return;
        if (!file.writableFinished) {
          return fail(new DownloadError(url, 'network', `Download of ${url} was interrupted after ${bytes} bytes`));
        }
        if (Number.isFinite(lenHeader) && lenHeader > 0 && bytes !== lenHeader) {
          return fail(new DownloadError(url, 'network', `Incomplete download of ${url}: ${bytes} of ${lenHeader} bytes`));
        }
        settled = true;
        progress?.done();
        resolve({ bytes, sha256: hash.digest('hex'), finalUrl: url });
      });
      res.pipe(file);
    });
    const connectTimer = setTimeout(
      () => fail(new DownloadError(url, 'timeout', `No response from ${new URL(url).host} within ${connectMs / 1000} s`)),
      connectMs,
    );
    req.setTimeout(idleMs, () => fail(new DownloadError(url, 'timeout', `Transfer from ${url} stalled for ${idleMs / 1000} s`)));
    req.on('error', (e: NodeJS.ErrnoException) =>
      fail(new DownloadError(url, 'network', `Cannot reach ${new URL(url).host} (${e.code ?? e.message})`)),
    );
  });
}
