// Summary statistics for benchmark samples: medians and ranges, never means
// (a single slow run on a shared 2-core machine would skew a mean).
export interface Summary {
  median: number;
  min: number;
  max: number;
  n: number;
}

export function summarize(samples: readonly number[]): Summary {
  const s = [...samples].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  const median = s.length === 0 ? NaN : s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
  return { median, min: s[0] ?? NaN, max: s[s.length - 1] ?? NaN, n: s.length };
}

export function formatSummary(x: Summary, unit: string, digits = 1): string {
  return `${x.median.toFixed(digits)} ${unit} (${x.min.toFixed(digits)}–${x.max.toFixed(digits)}, n=${x.n})`;
}
