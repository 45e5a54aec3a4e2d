// A picture of any size to one 28x28 gray image in [0, 1], as the eval reads image files
// (src/eval/images.ts: composited over black, gray, each output pixel the mean of the input
// pixels it covers, exact for a 28s x 28s image). Pure: the page passes RGBA pixels it decoded.

export const SIDE = 28;

export interface Converted {
  image: Float32Array;
  /** The picture had a light background (a dark drawing on paper) and was inverted to the datasets' light-on-dark. */
  inverted: boolean;
}

/** RGBA pixels (alpha composited over black) -> gray 28x28: centred in a square, area-averaged. */
export function toTaskImage(rgba: Uint8ClampedArray | Uint8Array, width: number, height: number): Converted {
  if (width < 1 || height < 1 || rgba.length !== width * height * 4) throw new Error(`an image of ${width}x${height} needs ${width * height * 4} RGBA values, got ${rgba.length}`);
  const side = Math.max(width, height);
  const ox = (side - width) / 2;
  const oy = (side - height) / 2;
  const gray = (x: number, y: number) => {
    const i = (y * width + x) * 4;
    const a = rgba[i + 3]! / 255;
    return (0.2126 * rgba[i]! + 0.7152 * rgba[i + 1]! + 0.0722 * rgba[i + 2]!) * a;
  };
  // The datasets draw light strokes on black; a light border means a dark drawing on paper,
  // which is inverted, and the padding takes the picture's background either way.
  let border = 0;
  for (let x = 0; x < width; x++) border += gray(x, 0) + gray(x, height - 1);
  for (let y = 0; y < height; y++) border += gray(0, y) + gray(width - 1, y);
  const inverted = border / (2 * (width + height) * 255) > 0.5;
  const pad = inverted ? 255 : 0;
  // Box filter: output pixel (X, Y) covers [X, X+1) * side/28 of the padded square.
  const out = new Float32Array(SIDE * SIDE);
  const scale = side / SIDE;
  for (let Y = 0; Y < SIDE; Y++) {
    const y0 = Y * scale - oy;
    const y1 = y0 + scale;
    for (let X = 0; X < SIDE; X++) {
      const x0 = X * scale - ox;
      const x1 = x0 + scale;
      let sum = 0;
      let area = 0;
      for (let y = Math.max(0, Math.floor(y0)); y < Math.min(height, Math.ceil(y1)); y++) {
        const wy = Math.min(y + 1, y1) - Math.max(y, y0);
        for (let x = Math.max(0, Math.floor(x0)); x < Math.min(width, Math.ceil(x1)); x++) {
          const wx = Math.min(x + 1, x1) - Math.max(x, x0);
          sum += wx * wy * gray(x, y);
          area += wx * wy;
        }
      }
      out[Y * SIDE + X] = Math.min(1, (sum + (scale * scale - area) * pad) / (scale * scale * 255));
    }
  }
  if (inverted) for (let i = 0; i < out.length; i++) out[i] = 1 - out[i]!;
  return { image: out, inverted };
}
