// A synchronous 8-bit gray PNG encoder that writes the same bytes as sharpPngEncoder():
// libvips' pngsave (libpng 1.6 with PNG_FILTER_NONE, compression level 6) over zlib-ng's
// deflate_medium. It is a port of exactly the decisions those libraries make (window bits,
// the row-by-row feeding, hash chains, match search, block splitting, Huffman trees, IDAT
// sizes), because any other deflate gives other bytes, and the sample route's ETags and
// responses must not change when Node stops paying for a libvips pipeline per image.
// test/serve/png-exact.test.ts checks it byte for byte against sharp.

import type { PngEncoder } from './png.js';
import { upscale } from './sampling.js';

// ---- zlib-ng constants (zutil.h, deflate.h, trees.h) ----
const STD_MIN_MATCH = 3;
const STD_MAX_MATCH = 258;
const WANT_MIN_MATCH = 4;
const MIN_LOOKAHEAD = STD_MAX_MATCH + STD_MIN_MATCH + 1;
const WIN_INIT = STD_MAX_MATCH;
const HASH_SIZE = 65536;
const LIT_BUFSIZE = 1 << (8 + 6); // libpng's default memLevel 8
const SYM_END = LIT_BUFSIZE - 1;
// Level 6 of zlib-ng's configuration_table: deflate_medium, good 8, lazy 16, nice 128, chain 128.
const MAX_INSERT_LENGTH = 16;
const NICE_MATCH = 128;
const MAX_CHAIN = 128;
const GOOD_MATCH = 8;

const LENGTH_CODES = 29;
const LITERALS = 256;
const L_CODES = LITERALS + 1 + LENGTH_CODES;
const D_CODES = 30;
const BL_CODES = 19;
const HEAP_SIZE = 2 * L_CODES + 1;
const MAX_BITS = 15;
const MAX_BL_BITS = 7;
const END_BLOCK = 256;
const REP_3_6 = 16;
const REPZ_3_10 = 17;
const REPZ_11_138 = 18;

const EXTRA_LBITS = [0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3, 4, 4, 4, 4, 5, 5, 5, 5, 0];
const EXTRA_DBITS = [0, 0, 0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7, 8, 8, 9, 9, 10, 10, 11, 11, 12, 12, 13, 13];
const EXTRA_BLBITS = [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2, 3, 7];
const BL_ORDER = [16, 17, 18, 0, 8, 7, 9, 6, 10, 5, 11, 4, 12, 3, 13, 2, 14, 1, 15];

const BASE_LENGTH = new Int32Array(LENGTH_CODES);
const LENGTH_CODE = new Uint8Array(256);
const BASE_DIST = new Int32Array(D_CODES);
const DIST_CODE = new Uint8Array(512);
const STATIC_LTREE_LEN = new Uint16Array(L_CODES + 2);
const STATIC_LTREE_CODE = new Uint16Array(L_CODES + 2);
const STATIC_DTREE_LEN = new Uint16Array(D_CODES);
const STATIC_DTREE_CODE = new Uint16Array(D_CODES);

function bitReverse(code: number, len: number): number {
  let r = 0;
  for (let i = 0; i < len; i++) {
    r = (r << 1) | (code & 1);
    code >>>= 1;
  }
  return r;
}

const NEXT_CODE = new Uint16Array(MAX_BITS + 1);

function genCodes(len: Uint16Array, code: Uint16Array, maxCode: number, blCount: Uint16Array): void {
  const next = NEXT_CODE;
  let c = 0;
  for (let bits = 1; bits <= MAX_BITS; bits++) {
    c = (c + blCount[bits - 1]!) << 1;
    next[bits] = c;
  }
  for (let n = 0; n <= maxCode; n++) {
    const l = len[n]!;
    if (l !== 0) code[n] = bitReverse(next[l]!++, l);
  }
}

(() => {
  let length = 0;
  let code: number;
  for (code = 0; code < LENGTH_CODES - 1; code++) {
    BASE_LENGTH[code] = length;
    for (let n = 0; n < 1 << EXTRA_LBITS[code]!; n++) LENGTH_CODE[length++] = code;
  }
  LENGTH_CODE[length - 1] = code; // length 258 has its own code
  let dist = 0;
  for (code = 0; code < 16; code++) {
    BASE_DIST[code] = dist;
    for (let n = 0; n < 1 << EXTRA_DBITS[code]!; n++) DIST_CODE[dist++] = code;
  }
  dist >>= 7;
  for (; code < D_CODES; code++) {
    BASE_DIST[code] = dist << 7;
    for (let n = 0; n < 1 << (EXTRA_DBITS[code]! - 7); n++) DIST_CODE[256 + dist++] = code;
  }
  const blCount = new Uint16Array(MAX_BITS + 1);
  let n = 0;
  while (n <= 143) (STATIC_LTREE_LEN[n++] = 8), blCount[8]!++;
  while (n <= 255) (STATIC_LTREE_LEN[n++] = 9), blCount[9]!++;
  while (n <= 279) (STATIC_LTREE_LEN[n++] = 7), blCount[7]!++;
  while (n <= 287) (STATIC_LTREE_LEN[n++] = 8), blCount[8]!++;
  genCodes(STATIC_LTREE_LEN, STATIC_LTREE_CODE, L_CODES + 1, blCount);
  for (let d = 0; d < D_CODES; d++) {
    STATIC_DTREE_LEN[d] = 5;
    STATIC_DTREE_CODE[d] = bitReverse(d, 5);
  }
})();

const dCode = (dist: number): number => (dist < 256 ? DIST_CODE[dist]! : DIST_CODE[256 + (dist >>> 7)]!);

interface TreeDesc {
  freq: Uint16Array;
  dl: Uint16Array; // dad and len share storage in zlib, and gen_bitlen relies on it
  code: Uint16Array;
  maxCode: number;
  staticLen: Uint16Array | null;
  extra: number[];
  extraBase: number;
  elems: number;
  maxLength: number;
}

function treeDesc(staticLen: Uint16Array | null, extra: number[], extraBase: number, elems: number, maxLength: number, size: number): TreeDesc {
  return { freq: new Uint16Array(size), dl: new Uint16Array(size), code: new Uint16Array(size), maxCode: 0, staticLen, extra, extraBase, elems, maxLength };
}

/** One zlib-ng deflate stream at level 6 with libpng's parameters; reused between images. */
class Deflater {
  private wSize = 0;
  private wMask = 0;
  private windowSize = 0;
  private maxDist = 0;
  private window = new Uint8Array(2 * 32768 + 2 * STD_MAX_MATCH);
  // w32[i] holds window[i..i+3] (little-endian): the hash's input, and 4-byte steps when comparing
  private w32 = new Int32Array(this.window.length);
  private prev = new Uint16Array(32768);
  private head = new Uint16Array(HASH_SIZE);
  private highWater = 0;
  private strstart = 0;
  private blockStart = 0;
  private lookahead = 0;
  private matchStart = 0;
  private insert = 0;
  // input (strm)
  private input: Uint8Array = new Uint8Array(0);
  private inPos = 0;
  private inEnd = 0;
  // output: produced bytes, and how many of them libpng's 8 KiB buffers had room for
  out = new Uint8Array(1024);
  outLen = 0;
  private bitBuf = 0;
  private bitCount = 0;
  private boundary = 0;
  private delivered = 0;
  // symbols
  private dBuf = new Uint16Array(LIT_BUFSIZE);
  private lBuf = new Uint8Array(LIT_BUFSIZE);
  private symNext = 0;
  private ltree = treeDesc(STATIC_LTREE_LEN, EXTRA_LBITS, LITERALS + 1, L_CODES, MAX_BITS, HEAP_SIZE);
  private dtree = treeDesc(STATIC_DTREE_LEN, EXTRA_DBITS, 0, D_CODES, MAX_BITS, 2 * D_CODES + 1);
  private bltree = treeDesc(null, EXTRA_BLBITS, 0, BL_CODES, MAX_BL_BITS, 2 * BL_CODES + 1);
  private heap = new Int32Array(HEAP_SIZE + 1);
  private heapLen = 0;
  private heapMax = 0;
  private depth = new Uint8Array(HEAP_SIZE + 1);
  private key = new Int32Array(HEAP_SIZE + 1); // freq * 256 + depth of each heap node (pqdownheap)
  private blCount = new Uint16Array(MAX_BITS + 1);
  private optLen = 0;
  private staticLen = 0;
  // deflate() state
  private finished = false;

  /** The zlib stream libpng writes for `raw` (filtered rows of `rowLen` bytes), before its CMF tweak. */
  compress(raw: Uint8Array, rowLen: number, windowBits: number): Uint8Array {
    this.reset(windowBits, raw.length);
    this.input = raw;
    this.inPos = 0;
    this.putShortMsb(this.zlibHeader());
    this.flushPending();
    const rows = raw.length / rowLen;
    for (let r = 0; r < rows; r++) this.pngCompressIdat((r + 1) * rowLen, false);
    this.pngCompressIdat(raw.length, true);
    return this.out.subarray(0, this.outLen);
  }

  private reset(windowBits: number, inputLength: number): void {
    this.wSize = 1 << windowBits;
    this.wMask = this.wSize - 1;
    this.windowSize = 2 * this.wSize;
    this.maxDist = this.wSize - MIN_LOOKAHEAD;
    this.head.fill(0);
    this.prev.fill(0, 0, this.wSize);
    this.highWater = 0;
    this.strstart = this.blockStart = this.lookahead = this.matchStart = this.insert = 0;
    this.outLen = 0;
    this.bitBuf = this.bitCount = 0;
    this.boundary = 8192;
    this.delivered = 0;
    this.finished = false;
    // Stored blocks cost 5 bytes each over their data; a block that cannot be stored (its start
    // slid out of the window) is coded, at worst 9 bits a byte.
    const worst = inputLength + (inputLength >>> 3) + 5 * (Math.ceil(inputLength / 16383) + 1) + 64;
    if (this.out.length < worst) this.out = new Uint8Array(worst);
    this.initBlock();
  }

  private zlibHeader(): number {
    let header = (8 + ((Math.log2(this.wSize) - 8) << 4)) << 8;
    header |= 2 << 6; // level 6
    header += 31 - (header % 31);
    return header;
  }

  // libpng's png_compress_IDAT: one call of deflate() per row (more while its 8 KiB buffer fills).
  private pngCompressIdat(end: number, finish: boolean): void {
    this.inEnd = end;
    for (;;) {
      const ended = this.deflate(finish);
      if (this.delivered === this.boundary) this.boundary += 8192; // an IDAT chunk went out
      if (ended) return;
      if (!finish && this.inPos === this.inEnd) return;
    }
  }

  /** zlib-ng's deflate() for Z_NO_FLUSH and Z_FINISH; true once the stream has ended. */
  private deflate(finish: boolean): boolean {
    if (this.outLen > this.delivered) {
      this.flushPending();
      if (this.delivered === this.boundary) return false;
    }
    if (this.inPos !== this.inEnd || this.lookahead !== 0 || (finish && !this.finished)) {
      const state = this.deflateMedium(finish);
      if (state === FINISH_STARTED || state === FINISH_DONE) this.finished = true;
      if (state === NEED_MORE || state === FINISH_STARTED) return false;
      // block_done never happens here: Z_NO_FLUSH returns need_more before the input runs out.
    }
    if (!finish) return false;
    this.putShortMsb(0); // placeholder for the adler32, written by the caller
    this.putShortMsb(0);
    this.flushPending();
    return true;
  }

  private flushPending(): void {
    this.delivered = Math.min(this.outLen, this.boundary);
  }

  private putShortMsb(w: number): void {
    this.out[this.outLen++] = w >>> 8;
    this.out[this.outLen++] = w & 0xff;
  }

  // ---- fill_window and read_buf ----
  private fillWindow(): void {
    const wsize = this.wSize;
    const window = this.window;
    do {
      let more = this.windowSize - this.lookahead - this.strstart;
      if (this.strstart >= wsize + this.maxDist) {
        window.copyWithin(0, wsize, wsize + wsize);
        this.pack(0, wsize);
        if (this.matchStart >= wsize) this.matchStart -= wsize;
        else this.matchStart = 0;
        this.strstart -= wsize;
        this.blockStart -= wsize;
        if (this.insert > this.strstart) this.insert = this.strstart;
        this.slideHash();
        more += wsize;
      }
      if (this.inPos === this.inEnd) break;
      const n = Math.min(more, this.inEnd - this.inPos);
      window.set(this.input.subarray(this.inPos, this.inPos + n), this.strstart + this.lookahead);
      this.pack(this.strstart + this.lookahead, this.strstart + this.lookahead + n);
      this.inPos += n;
      this.lookahead += n;
      if (this.lookahead + this.insert >= STD_MIN_MATCH) {
        const str = this.strstart - this.insert;
        // Every read hashes the position before strstart again (zlib-ng's fill_window does).
        if (str >= 1) this.quickInsert(str - 1);
        let count = this.insert;
        if (this.lookahead === 1) count -= 1;
        if (count > 0) {
          this.insertStrings(str, count);
          this.insert -= count;
        }
      }
    } while (this.lookahead < MIN_LOOKAHEAD && this.inPos !== this.inEnd);

    if (this.highWater < this.windowSize) {
      const curr = this.strstart + this.lookahead;
      if (this.highWater < curr) {
        const init = Math.min(this.windowSize - curr, WIN_INIT);
        window.fill(0, curr, curr + init);
        this.pack(curr, curr + init);
        this.highWater = curr + init;
      } else if (this.highWater < curr + WIN_INIT) {
        const init = Math.min(curr + WIN_INIT - this.highWater, this.windowSize - this.highWater);
        window.fill(0, this.highWater, this.highWater + init);
        this.pack(this.highWater, this.highWater + init);
        this.highWater += init;
      }
    }
  }

  /** Refreshes w32 after window[from..to) changed. */
  private pack(from: number, to: number): void {
    const w = this.window;
    const w32 = this.w32;
    for (let i = from > 3 ? from - 3 : 0; i < to; i++) w32[i] = w[i]! | (w[i + 1]! << 8) | (w[i + 2]! << 16) | (w[i + 3]! << 24);
  }

  private slideHash(): void {
    const wsize = this.wSize;
    const head = this.head;
    for (let i = 0; i < HASH_SIZE; i++) {
      const m = head[i]!;
      head[i] = m >= wsize ? m - wsize : 0;
    }
    const prev = this.prev;
    for (let i = 0; i < wsize; i++) {
      const m = prev[i]!;
      prev[i] = m >= wsize ? m - wsize : 0;
    }
  }

  // ---- hashing (insert_string_tpl.h: Knuth's multiplicative hash of 4 bytes) ----
  private hashAt(p: number): number {
    return Math.imul(this.w32[p]!, 2654435761) >>> 16;
  }

  private quickInsert(str: number): number {
    const h = this.hashAt(str);
    const head = this.head[h]!;
    if (head !== str) {
      this.prev[str & this.wMask] = head;
      this.head[h] = str;
    }
    return head;
  }

  private insertStrings(str: number, count: number): void {
    for (let idx = str, end = str + count; idx < end; idx++) {
      const h = this.hashAt(idx);
      const head = this.head[h]!;
      if (head !== idx) {
        this.prev[idx & this.wMask] = head;
        this.head[h] = idx;
      }
    }
  }

  // ---- longest_match (match_tpl.h), as deflate_medium calls it (prev_length 0) ----
  private longestMatch(curMatch: number): number {
    const window = this.window;
    const w32 = this.w32;
    const strstart = this.strstart;
    const lookahead = this.lookahead;
    const scanStart = w32[strstart]!;
    const prev = this.prev;
    const wmask = this.wMask;
    let bestLen = STD_MIN_MATCH - 1;
    let chainLength = MAX_CHAIN;
    if (bestLen >= GOOD_MATCH) chainLength >>= 2;
    const limit = strstart > this.maxDist ? strstart - this.maxDist : 0;
    for (;;) {
      if (curMatch >= strstart) break;
      // Only matches of 4 or more count (deflate_medium makes shorter ones literals), so a
      // candidate must agree on its first 4 bytes, and on the byte that would beat bestLen.
      if (w32[curMatch] === scanStart && window[curMatch + bestLen] === window[strstart + bestLen]) {
        let len = 4;
        while (len <= STD_MAX_MATCH - 4 && w32[curMatch + len] === w32[strstart + len]) len += 4;
        while (len < STD_MAX_MATCH && window[curMatch + len] === window[strstart + len]) len++;
        if (len > bestLen) {
          this.matchStart = curMatch;
          // A match reaching the end of the input ends the search (later candidates could only
          // be longer by comparing the zeroed bytes past it).
          if (len >= lookahead) return lookahead;
          bestLen = len;
          if (bestLen >= NICE_MATCH) return bestLen;
        }
      }
      if (--chainLength !== 0 && (curMatch = prev[curMatch & wmask]!) > limit) continue;
      return bestLen;
    }
    return bestLen;
  }

  // ---- deflate_medium.c ----
  private findBestMatch(hashHead: number, m: Match): void {
    m.strstart = this.strstart;
    m.orgstart = m.strstart;
    const dist = this.strstart - hashHead;
    if (dist <= this.maxDist && dist > 0 && hashHead !== 0) {
      m.matchLength = this.longestMatch(hashHead);
      m.matchStart = this.matchStart;
      if (m.matchLength < WANT_MIN_MATCH) m.matchLength = 1;
      if (m.matchStart >= m.strstart) m.matchLength = 1;
    } else {
      m.matchStart = 0;
      m.matchLength = 1;
    }
  }

  private insertMatch(m: Match): void {
    if (this.lookahead <= m.matchLength + WANT_MIN_MATCH) return;
    let strstart = m.strstart + 1;
    let matchLength = m.matchLength - 1;
    if (matchLength < WANT_MIN_MATCH - 1) {
      if (matchLength > 0 && strstart >= m.orgstart) {
        if (strstart + matchLength - 1 >= m.orgstart) this.insertStrings(strstart, matchLength);
        else this.insertStrings(strstart, m.orgstart - strstart + 1);
      }
      return;
    }
    // Of a very long match only the last position goes into the hash table.
    if (m.matchLength > 16 * MAX_INSERT_LENGTH) {
      this.quickInsert(m.strstart + m.matchLength - 1);
      return;
    }
    if (strstart >= m.orgstart) {
      if (strstart + matchLength - 1 >= m.orgstart) this.insertStrings(strstart, matchLength);
      else this.insertStrings(strstart, m.orgstart - strstart + 1);
    } else if (m.orgstart < strstart + matchLength) {
      this.insertStrings(m.orgstart, strstart + matchLength - m.orgstart);
    }
  }

  private fizzleMatches(current: Match, next: Match): void {
    if (current.matchLength <= 1) return;
    if (current.matchLength > 1 + next.matchStart) return;
    if (current.matchLength > 1 + next.strstart) return;
    const window = this.window;
    if (window[next.matchStart - current.matchLength + 1] !== window[next.strstart - current.matchLength + 1]) return;
    let cLen = current.matchLength;
    let nStr = next.strstart;
    let nStart = next.matchStart;
    let nLen = next.matchLength;
    const limit = next.strstart > this.maxDist ? next.strstart - this.maxDist : 0;
    let match = nStart - 1;
    let orig = nStr - 1;
    let changed = 0;
    while (window[match] === window[orig]) {
      if (cLen < 1) break;
      if (nStr <= limit) break;
      if (nLen >= 256) break;
      if (nStart <= 1) break;
      nStr--;
      nStart--;
      nLen++;
      cLen--;
      match--;
      orig--;
      changed++;
    }
    if (!changed) return;
    if (cLen <= 1 && nLen !== 2) {
      next.orgstart++;
      current.matchLength = cLen;
      next.strstart = nStr;
      next.matchStart = nStart;
      next.matchLength = nLen;
    }
  }

  private emitMatch(m: Match): boolean {
    let bflush = false;
    if (m.matchLength < WANT_MIN_MATCH) {
      let s = m.strstart;
      for (let n = m.matchLength; n > 0; n--) {
        bflush = this.tallyLit(this.window[s++]!) || bflush;
        this.lookahead--;
      }
      return bflush;
    }
    bflush = this.tallyDist(m.strstart - m.matchStart, m.matchLength - STD_MIN_MATCH);
    this.lookahead -= m.matchLength;
    return bflush;
  }

  private deflateMedium(finish: boolean): number {
    const current = newMatch();
    const next = newMatch();
    for (;;) {
      if (this.lookahead < MIN_LOOKAHEAD) {
        this.fillWindow();
        if (this.lookahead < MIN_LOOKAHEAD && !finish) return NEED_MORE;
        if (this.lookahead === 0) break;
        next.matchLength = 0;
      }
      if (next.matchLength > 0) {
        copyMatch(current, next);
        next.matchLength = 0;
      } else {
        let hashHead = 0;
        if (this.lookahead >= WANT_MIN_MATCH) hashHead = this.quickInsert(this.strstart);
        this.findBestMatch(hashHead, current);
      }
      this.insertMatch(current);
      if (this.lookahead > MIN_LOOKAHEAD && current.strstart + current.matchLength < this.windowSize - MIN_LOOKAHEAD) {
        this.strstart = current.strstart + current.matchLength;
        const hashHead = this.quickInsert(this.strstart);
        next.strstart = this.strstart;
        next.orgstart = next.strstart;
        const dist = this.strstart - hashHead;
        if (dist <= this.maxDist && dist > 0 && hashHead !== 0) {
          next.matchLength = this.longestMatch(hashHead);
          next.matchStart = this.matchStart;
          if (next.matchStart >= next.strstart) next.matchLength = 1;
          if (next.matchLength < WANT_MIN_MATCH) next.matchLength = 1;
          else this.fizzleMatches(current, next);
        } else {
          next.matchStart = 0;
          next.matchLength = 1;
        }
        this.strstart = current.strstart;
      } else {
        next.matchLength = 0;
      }
      const bflush = this.emitMatch(current);
      this.strstart += current.matchLength;
      if (bflush) {
        this.flushBlock(false);
        if (this.delivered === this.boundary) return NEED_MORE;
      }
    }
    this.insert = this.strstart < STD_MIN_MATCH - 1 ? this.strstart : STD_MIN_MATCH - 1;
    if (finish) {
      this.flushBlock(true);
      return this.delivered === this.boundary ? FINISH_STARTED : FINISH_DONE;
    }
    if (this.symNext) {
      this.flushBlock(false);
      if (this.delivered === this.boundary) return NEED_MORE;
    }
    return BLOCK_DONE;
  }

  private flushBlock(last: boolean): void {
    const stored = this.blockStart >= 0;
    this.trFlushBlock(stored ? this.blockStart : -1, this.strstart - this.blockStart, last);
    this.blockStart = this.strstart;
    this.flushPending();
  }

  // ---- symbol tallies (deflate_p.h) ----
  private tallyLit(c: number): boolean {
    this.dBuf[this.symNext] = 0;
    this.lBuf[this.symNext++] = c;
    this.ltree.freq[c]!++;
    return this.symNext === SYM_END;
  }

  private tallyDist(dist: number, len: number): boolean {
    this.dBuf[this.symNext] = dist;
    this.lBuf[this.symNext++] = len;
    this.ltree.freq[LENGTH_CODE[len]! + LITERALS + 1]!++;
    this.dtree.freq[dCode(dist - 1)]!++;
    return this.symNext === SYM_END;
  }

  // ---- trees.c ----
  private initBlock(): void {
    this.ltree.freq.fill(0, 0, L_CODES);
    this.dtree.freq.fill(0, 0, D_CODES);
    this.bltree.freq.fill(0, 0, BL_CODES);
    this.ltree.freq[END_BLOCK] = 1;
    this.optLen = this.staticLen = 0;
    this.symNext = 0;
  }

  // zlib's smaller(n, m) is freq[n] < freq[m] || (freq[n] == freq[m] && depth[n] <= depth[m]):
  // with key = freq * 256 + depth (freq below 2^16, depth 8 bits) that is key[n] <= key[m].
  private pqdownheap(k: number): void {
    const heap = this.heap;
    const key = this.key;
    const heapLen = this.heapLen;
    const v = heap[k]!;
    const kv = key[v]!;
    let j = k << 1;
    while (j <= heapLen) {
      let hj = heap[j]!;
      if (j < heapLen) {
        const h1 = heap[j + 1]!;
        if (key[h1]! <= key[hj]!) {
          j++;
          hj = h1;
        }
      }
      if (kv <= key[hj]!) break;
      heap[k] = hj;
      k = j;
      j <<= 1;
    }
    heap[k] = v;
  }

  private genBitlen(desc: TreeDesc): void {
    const { freq, dl, maxCode, staticLen: stree, extra, extraBase: base, maxLength } = desc;
    const heap = this.heap;
    const blCount = this.blCount;
    let overflow = 0;
    blCount.fill(0);
    dl[heap[this.heapMax]!] = 0;
    let h: number;
    for (h = this.heapMax + 1; h < HEAP_SIZE; h++) {
      const n = heap[h]!;
      let bits = dl[dl[n]!]! + 1;
      if (bits > maxLength) {
        bits = maxLength;
        overflow++;
      }
      dl[n] = bits;
      if (n > maxCode) continue;
      blCount[bits]!++;
      const xbits = n >= base ? extra[n - base]! : 0;
      const f = freq[n]!;
      this.optLen += f * (bits + xbits);
      if (stree) this.staticLen += f * (stree[n]! + xbits);
    }
    if (overflow === 0) return;
    do {
      let bits = maxLength - 1;
      while (blCount[bits] === 0) bits--;
      blCount[bits]!--;
      blCount[bits + 1]! += 2;
      blCount[maxLength]!--;
      overflow -= 2;
    } while (overflow > 0);
    for (let bits = maxLength; bits !== 0; bits--) {
      let n = blCount[bits]!;
      while (n !== 0) {
        const m = heap[--h]!;
        if (m > maxCode) continue;
        if (dl[m] !== bits) {
          this.optLen += (bits - dl[m]!) * freq[m]!;
          dl[m] = bits;
        }
        n--;
      }
    }
  }

  private buildTree(desc: TreeDesc): void {
    const { freq, dl, staticLen: stree, elems } = desc;
    const heap = this.heap;
    const depth = this.depth;
    const key = this.key;
    let maxCode = -1;
    this.heapLen = 0;
    this.heapMax = HEAP_SIZE;
    for (let n = 0; n < elems; n++) {
      if (freq[n] !== 0) {
        heap[++this.heapLen] = maxCode = n;
        depth[n] = 0;
        key[n] = freq[n]! << 8;
      } else {
        dl[n] = 0;
      }
    }
    while (this.heapLen < 2) {
      const node = (heap[++this.heapLen] = maxCode < 2 ? ++maxCode : 0);
      freq[node] = 1;
      depth[node] = 0;
      key[node] = 1 << 8;
      this.optLen--;
      if (stree) this.staticLen -= stree[node]!;
    }
    desc.maxCode = maxCode;
    for (let n = this.heapLen >> 1; n >= 1; n--) this.pqdownheap(n);
    let node = elems;
    do {
      const n = heap[1]!;
      heap[1] = heap[this.heapLen--]!;
      this.pqdownheap(1);
      const m = heap[1]!;
      heap[--this.heapMax] = n;
      heap[--this.heapMax] = m;
      freq[node] = freq[n]! + freq[m]!;
      depth[node] = (depth[n]! >= depth[m]! ? depth[n]! : depth[m]!) + 1;
      key[node] = (freq[node]! << 8) | depth[node]!;
      dl[n] = dl[m] = node;
      heap[1] = node++;
      this.pqdownheap(1);
    } while (this.heapLen >= 2);
    heap[--this.heapMax] = heap[1]!;
    this.genBitlen(desc);
    genCodes(dl, desc.code, maxCode, this.blCount);
  }

  private scanTree(desc: TreeDesc, maxCode: number): void {
    const len = desc.dl;
    const blFreq = this.bltree.freq;
    let prevlen = -1;
    let nextlen = len[0]!;
    let count = 0;
    let maxCount = 7;
    let minCount = 4;
    if (nextlen === 0) (maxCount = 138), (minCount = 3);
    len[maxCode + 1] = 0xffff;
    for (let n = 0; n <= maxCode; n++) {
      const curlen = nextlen;
      nextlen = len[n + 1]!;
      if (++count < maxCount && curlen === nextlen) continue;
      else if (count < minCount) blFreq[curlen]! += count;
      else if (curlen !== 0) {
        if (curlen !== prevlen) blFreq[curlen]!++;
        blFreq[REP_3_6]!++;
      } else if (count <= 10) blFreq[REPZ_3_10]!++;
      else blFreq[REPZ_11_138]!++;
      count = 0;
      prevlen = curlen;
      if (nextlen === 0) (maxCount = 138), (minCount = 3);
      else if (curlen === nextlen) (maxCount = 6), (minCount = 3);
      else (maxCount = 7), (minCount = 4);
    }
  }

  private sendTree(desc: TreeDesc, maxCode: number): void {
    const len = desc.dl;
    const blLen = this.bltree.dl;
    const blCode = this.bltree.code;
    let prevlen = -1;
    let nextlen = len[0]!;
    let count = 0;
    let maxCount = 7;
    let minCount = 4;
    if (nextlen === 0) (maxCount = 138), (minCount = 3);
    for (let n = 0; n <= maxCode; n++) {
      const curlen = nextlen;
      nextlen = len[n + 1]!;
      if (++count < maxCount && curlen === nextlen) continue;
      else if (count < minCount) {
        do this.sendBits(blCode[curlen]!, blLen[curlen]!);
        while (--count !== 0);
      } else if (curlen !== 0) {
        if (curlen !== prevlen) {
          this.sendBits(blCode[curlen]!, blLen[curlen]!);
          count--;
        }
        this.sendBits(blCode[REP_3_6]!, blLen[REP_3_6]!);
        this.sendBits(count - 3, 2);
      } else if (count <= 10) {
        this.sendBits(blCode[REPZ_3_10]!, blLen[REPZ_3_10]!);
        this.sendBits(count - 3, 3);
      } else {
        this.sendBits(blCode[REPZ_11_138]!, blLen[REPZ_11_138]!);
        this.sendBits(count - 11, 7);
      }
      count = 0;
      prevlen = curlen;
      if (nextlen === 0) (maxCount = 138), (minCount = 3);
      else if (curlen === nextlen) (maxCount = 6), (minCount = 3);
      else (maxCount = 7), (minCount = 4);
    }
  }

  private buildBlTree(): number {
    this.scanTree(this.ltree, this.ltree.maxCode);
    this.scanTree(this.dtree, this.dtree.maxCode);
    this.buildTree(this.bltree);
    let maxBlindex: number;
    for (maxBlindex = BL_CODES - 1; maxBlindex >= 3; maxBlindex--) {
      if (this.bltree.dl[BL_ORDER[maxBlindex]!] !== 0) break;
    }
    this.optLen += 3 * (maxBlindex + 1) + 5 + 5 + 4;
    return maxBlindex;
  }

  private sendAllTrees(lcodes: number, dcodes: number, blcodes: number): void {
    this.sendBits(lcodes - 257, 5);
    this.sendBits(dcodes - 1, 5);
    this.sendBits(blcodes - 4, 4);
    for (let rank = 0; rank < blcodes; rank++) this.sendBits(this.bltree.dl[BL_ORDER[rank]!]!, 3);
    this.sendTree(this.ltree, lcodes - 1);
    this.sendTree(this.dtree, dcodes - 1);
  }

  private trFlushBlock(bufStart: number, storedLen: number, last: boolean): void {
    let optLenb: number;
    let staticLenb: number;
    let maxBlindex = 0;
    if (this.symNext === 0) {
      optLenb = staticLenb = 0;
      this.staticLen = 7;
    } else {
      this.buildTree(this.ltree);
      this.buildTree(this.dtree);
      maxBlindex = this.buildBlTree();
      optLenb = (this.optLen + 3 + 7) >>> 3;
      staticLenb = (this.staticLen + 3 + 7) >>> 3;
      if (staticLenb <= optLenb) optLenb = staticLenb;
    }
    const lastBit = last ? 1 : 0;
    if (storedLen + 4 <= optLenb && bufStart >= 0) {
      this.sendBits(lastBit, 3); // STORED_BLOCK
      this.windup();
      this.out[this.outLen++] = storedLen & 0xff;
      this.out[this.outLen++] = (storedLen >>> 8) & 0xff;
      this.out[this.outLen++] = ~storedLen & 0xff;
      this.out[this.outLen++] = (~storedLen >>> 8) & 0xff;
      this.out.set(this.window.subarray(bufStart, bufStart + storedLen), this.outLen);
      this.outLen += storedLen;
    } else if (staticLenb === optLenb) {
      this.sendBits((1 << 1) + lastBit, 3);
      this.compressBlock(STATIC_LTREE_LEN, STATIC_LTREE_CODE, STATIC_DTREE_LEN, STATIC_DTREE_CODE);
    } else {
      this.sendBits((2 << 1) + lastBit, 3);
      this.sendAllTrees(this.ltree.maxCode + 1, this.dtree.maxCode + 1, maxBlindex + 1);
      this.compressBlock(this.ltree.dl, this.ltree.code, this.dtree.dl, this.dtree.code);
    }
    this.initBlock();
    if (last) this.windup();
  }

  private compressBlock(lLen: Uint16Array, lCode: Uint16Array, dLen: Uint16Array, dCodes: Uint16Array): void {
    const dBuf = this.dBuf;
    const lBuf = this.lBuf;
    for (let sx = 0; sx < this.symNext; sx++) {
      let dist = dBuf[sx]!;
      let lc = lBuf[sx]!;
      if (dist === 0) {
        this.sendBits(lCode[lc]!, lLen[lc]!);
      } else {
        let code = LENGTH_CODE[lc]!;
        this.sendBits(lCode[code + LITERALS + 1]!, lLen[code + LITERALS + 1]!);
        let extra = EXTRA_LBITS[code]!;
        if (extra !== 0) {
          lc -= BASE_LENGTH[code]!;
          this.sendBits(lc, extra);
        }
        dist--;
        code = dCode(dist);
        this.sendBits(dCodes[code]!, dLen[code]!);
        extra = EXTRA_DBITS[code]!;
        if (extra !== 0) {
          dist -= BASE_DIST[code]!;
          this.sendBits(dist, extra);
        }
      }
    }
    this.sendBits(lCode[END_BLOCK]!, lLen[END_BLOCK]!);
  }

  private sendBits(value: number, length: number): void {
    this.bitBuf |= value << this.bitCount;
    this.bitCount += length;
    while (this.bitCount >= 8) {
      this.out[this.outLen++] = this.bitBuf & 0xff;
      this.bitBuf >>>= 8;
      this.bitCount -= 8;
    }
  }

  private windup(): void {
    if (this.bitCount > 0) this.out[this.outLen++] = this.bitBuf & 0xff;
    this.bitBuf = this.bitCount = 0;
  }
}

interface Match {
  matchStart: number;
  matchLength: number;
  strstart: number;
  orgstart: number;
}

const newMatch = (): Match => ({ matchStart: 0, matchLength: 0, strstart: 0, orgstart: 0 });

function copyMatch(to: Match, from: Match): void {
  to.matchStart = from.matchStart;
  to.matchLength = from.matchLength;
  to.strstart = from.strstart;
  to.orgstart = from.orgstart;
}

const NEED_MORE = 0;
const BLOCK_DONE = 1;
const FINISH_STARTED = 2;
const FINISH_DONE = 3;

function adler32(bytes: Uint8Array): number {
  let a = 1;
  let b = 0;
  for (let i = 0; i < bytes.length; ) {
    const end = Math.min(i + 3800, bytes.length); // stays below 2^31 before the modulo
    for (; i < end; i++) {
      a += bytes[i]!;
      b += a;
    }
    a %= 65521;
    b %= 65521;
  }
  return ((b << 16) | a) >>> 0;
}

// ---- PNG framing (libpng's png_write_* as libvips' pngsave calls them) ----

const CRC_TABLE = (() => {
  const table = new Int32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    table[n] = c;
  }
  return table;
})();

function crc32(bytes: Uint8Array, start: number, end: number): number {
  let crc = -1;
  for (let i = start; i < end; i++) crc = CRC_TABLE[(crc ^ bytes[i]!) & 0xff]! ^ (crc >>> 8);
  return (crc ^ -1) >>> 0;
}

/** libpng's png_deflate_claim: 15 window bits, fewer when the whole image is smaller. */
function windowBitsFor(dataSize: number): number {
  let windowBits = 15;
  if (dataSize <= 16384) {
    let half = 1 << (windowBits - 1);
    while (dataSize + 262 <= half) {
      half >>= 1;
      windowBits--;
    }
  }
  return windowBits === 8 ? 9 : windowBits; // zlib-ng's deflateInit2 turns 8 into 9
}

/** libpng's optimize_cmf: the header may advertise a smaller window than deflate used. */
function optimizeCmf(data: Uint8Array, dataSize: number): void {
  if (dataSize > 16384) return;
  let cmf = data[0]!;
  if ((cmf & 0x0f) !== 8 || (cmf & 0xf0) > 0x70) return;
  let cinfo = cmf >> 4;
  let half = 1 << (cinfo + 7);
  if (dataSize > half) return;
  do {
    half >>= 1;
    cinfo--;
  } while (cinfo > 0 && dataSize <= half);
  cmf = (cmf & 0x0f) | (cinfo << 4);
  data[0] = cmf;
  let tmp = data[1]! & 0xe0;
  tmp += 0x1f - (((cmf << 8) + tmp) % 0x1f);
  data[1] = tmp;
}

const IDAT_SIZE = 8192; // libpng's PNG_ZBUF_SIZE
const deflater = new Deflater();

/** The PNG sharp writes for an 8-bit gray image (no upscaling). */
export function encodeGrayPngExact(pixels: Uint8Array, width: number, height: number): Uint8Array {
  if (pixels.length !== width * height) throw new Error(`encodeGrayPngExact: ${pixels.length} pixels for a ${width}x${height} image`);
  if (width < 1 || height < 1) throw new Error(`encodeGrayPngExact: empty image ${width}x${height}`);
  const rowLen = width + 1;
  const raw = new Uint8Array(rowLen * height); // each row: filter byte 0 (None), then the pixels
  for (let y = 0; y < height; y++) raw.set(pixels.subarray(y * width, (y + 1) * width), y * rowLen + 1);
  const z = deflater.compress(raw, rowLen, windowBitsFor(raw.length));
  const adler = adler32(raw);
  z[z.length - 4] = adler >>> 24;
  z[z.length - 3] = (adler >>> 16) & 0xff;
  z[z.length - 2] = (adler >>> 8) & 0xff;
  z[z.length - 1] = adler & 0xff;
  optimizeCmf(z, raw.length);

  const idats = Math.max(1, Math.ceil(z.length / IDAT_SIZE));
  const png = new Uint8Array(8 + 25 + 21 + idats * 12 + z.length + 12);
  const view = new DataView(png.buffer);
  png.set([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
  let o = 8;
  const chunk = (type: string, length: number, fill: (at: number) => void): void => {
    view.setUint32(o, length);
    for (let i = 0; i < 4; i++) png[o + 4 + i] = type.charCodeAt(i);
    fill(o + 8);
    view.setUint32(o + 8 + length, crc32(png, o + 4, o + 8 + length));
    o += 12 + length;
  };
  chunk('IHDR', 13, (at) => {
    view.setUint32(at, width);
    view.setUint32(at + 4, height);
    png.set([8, 0, 0, 0, 0], at + 8); // 8 bits, gray, deflate, adaptive filtering, no interlace
  });
  // libvips' default resolution (1 pixel per mm), which a nearest-neighbour resize keeps
  chunk('pHYs', 9, (at) => {
    view.setUint32(at, 1000);
    view.setUint32(at + 4, 1000);
    png[at + 8] = 1; // per metre
  });
  for (let i = 0; i < z.length; i += IDAT_SIZE) {
    const part = z.subarray(i, Math.min(i + IDAT_SIZE, z.length));
    chunk('IDAT', part.length, (at) => png.set(part, at));
  }
  chunk('IEND', 0, () => {});
  return o === png.length ? png : png.subarray(0, o);
}

/**
 * The Node encoder: sharp's bytes without sharp's per-image pipeline. Named 'sharp' because
 * the sample route's ETags include the encoder's name, and these are sharp's bytes.
 */
export function exactPngEncoder(): PngEncoder {
  return {
    name: 'sharp',
    gray: (pixels, width, height, scale) => Promise.resolve(encodeGrayPngExact(upscale(pixels, width, height, scale), width * scale, height * scale)),
  };
}
