/**
 * Benchmark figures: every suite returns named numbers; the runner prints them as a table and
 * writes them all to bench-results.json (an array of {name, value, unit}; dotted names).
 */
import { readFile } from 'node:fs/promises';
import { writeFileAtomic } from '../io/atomic-write.js';

export interface Figure {
  /** Dotted name, e.g. `t2i.ms_per_step_64`. */
  name: string;
  value: number;
  unit: string;
  /** What the figure measures, for the printed table. */
  label: string;
}

export interface BenchSuite {
  name: string;
  run(log: (line: string) => void): Promise<Figure[]>;
}

export function median(values: number[]): number {
  const s = [...values].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 ? s[mid] : (s[mid - 1] + s[mid]) / 2;
}

export function formatTable(figures: Figure[]): string {
  const rows = figures.map((f) => [f.name, f.label, formatValue(f.value), f.unit]);
  const header = ['figure', 'what', 'value', 'unit'];
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const line = (cells: string[]) =>
    cells.map((c, i) => (i === 2 ? c.padStart(widths[i]) : c.padEnd(widths[i]))).join('  ');
  return [line(header), widths.map((w) => '-'.repeat(w)).join('  '), ...rows.map(line)].join('\n');
}

function formatValue(v: number): string {
  if (Number.isInteger(v)) return String(v);
  return Math.abs(v) >= 100 ? v.toFixed(1) : v.toFixed(3);
}

export async function writeFigures(path: string, figures: Figure[]): Promise<void> {
  const json = figures.map(({ name, value, unit }) => ({ name, value, unit }));
  await writeFileAtomic(path, JSON.stringify(json, null, 2) + '\n');
}

/**
 * The figures already in `path` (as {name, value, unit}; label empty), or none when it is missing
 * or unreadable: a run of some suites keeps the others' last figures.
 */
export async function readFigures(path: string): Promise<Figure[]> {
  try {
    const json: unknown = JSON.parse(await readFile(path, 'utf8'));
    if (!Array.isArray(json)) return [];
    return json.flatMap((f: unknown) => {
      const { name, value, unit } = (f ?? {}) as Partial<Figure>;
      return typeof name === 'string' && typeof value === 'number' && typeof unit === 'string'
        ? [{ name, value, unit, label: '' }]
        : [];
    });
  } catch {
    return [];
  }
}
