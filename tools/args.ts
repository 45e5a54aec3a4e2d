// Command-line values shared by the tools' scripts.

/** A `--name` value that must be a whole number of at least `min`; the error names the flag and the value. */
export function wholeNumberFlag(name: string, v: string | undefined, min: number): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n < min) throw new Error(`--${name} must be a whole number >= ${min}, got '${v}'`);
  return n;
}
