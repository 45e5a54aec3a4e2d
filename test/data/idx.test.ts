import { describe, expect, it } from 'vitest';
import { gzipSync } from 'node:zlib';
import { IdxError, checkPair, encodeIdx, parseIdx, parseIdxImages, parseIdxLabels } from '../../src/data/idx.ts';

function imagesFixture(count = 3, rows = 4, cols = 5): Uint8Array {
  const data = new Uint8Array(count * rows * cols).map((_, i) => (i * 7) % 256);
  return encodeIdx(data, [count, rows, cols], false);
}

function labelsFixture(labels: number[]): Uint8Array {
  return encodeIdx(Uint8Array.from(labels), [labels.length], false);
}

describe('parseIdx', () => {
  it('reads a valid raw images file', () => {
    const img = parseIdxImages(imagesFixture(), 'imgs.idx');
    expect(img).toMatchObject({ count: 3, rows: 4, cols: 5 });
    expect(img.pixels.length).toBe(60);
    expect(img.pixels[10]).toBe(70);
  });

  it('reads the same content gzip-compressed', () => {
    const raw = imagesFixture();
    const gz = new Uint8Array(gzipSync(raw));
    expect(parseIdx(gz, 'imgs.idx.gz')).toEqual(parseIdx(raw, 'imgs.idx'));
  });

  it('round-trips through encodeIdx', () => {
    const labels = parseIdxLabels(encodeIdx(Uint8Array.from([3, 1, 4, 1, 5]), [5]), 'l.gz');
    expect([...labels]).toEqual([3, 1, 4, 1, 5]);
  });

  it('rejects a wrong magic number, naming file and value', () => {
    const buf = imagesFixture();
    buf[0] = 0x1a;
    expect(() => parseIdx(buf, 'bad-magic.idx')).toThrow(IdxError);
    expect(() => parseIdx(buf, 'bad-magic.idx')).toThrow(/bad-magic\.idx: wrong magic number 0x1a000803/);
  });

  it('rejects an unsupported dtype', () => {
    const buf = imagesFixture();
    buf[2] = 0x0d;
    expect(() => parseIdx(buf, 'f.idx')).toThrow(/f\.idx: unsupported dtype 0x0d \(float32\)/);
  });

  it('rejects truncated data and a truncated header', () => {
    const buf = imagesFixture();
    expect(() => parseIdx(buf.subarray(0, buf.length - 1), 't.idx')).toThrow(/t\.idx: truncated data: header declares 3×4×5 = 60 bytes, file has 59/);
    expect(() => parseIdx(buf.subarray(0, 9), 'h.idx')).toThrow(/h\.idx: truncated header/);
    expect(() => parseIdx(buf.subarray(0, 2), 'h2.idx')).toThrow(/h2\.idx: truncated header/);
  });

  it('rejects trailing bytes', () => {
    const buf = imagesFixture();
    const longer = new Uint8Array(buf.length + 3);
    longer.set(buf);
    expect(() => parseIdx(longer, 'x.idx')).toThrow(/x\.idx: 3 unexpected trailing bytes/);
  });

  it('reports gzip errors (truncated gzip stream)', () => {
    const gz = encodeIdx(new Uint8Array(1000).fill(9), [1000]);
    expect(() => parseIdx(gz.subarray(0, gz.length - 10), 'cut.gz')).toThrow(/cut\.gz: gzip error/);
  });

  it('checks the number of dimensions for images and labels', () => {
    expect(() => parseIdxImages(labelsFixture([1, 2]), 'l.idx')).toThrow(/l\.idx: expected an images file with 3 dimensions/);
    expect(() => parseIdxLabels(imagesFixture(), 'i.idx')).toThrow(/i\.idx: expected a labels file with 1 dimension/);
  });

  it('rejects labels outside the class range', () => {
    expect(() => parseIdxLabels(labelsFixture([1, 12]), 'l.idx')).toThrow(/l\.idx: label 12 at index 1 is out of range 0\.\.9/);
  });

  it('rejects image and label counts that disagree', () => {
    const img = parseIdxImages(imagesFixture(3), 'a-images.idx');
    const labels = parseIdxLabels(labelsFixture([1, 2]), 'a-labels.idx');
    expect(() => checkPair(img, labels, 'a-images.idx', 'a-labels.idx')).toThrow(
      /a-images\.idx \+ a-labels\.idx: image and label counts disagree: 3 images, 2 labels/,
    );
  });
});
