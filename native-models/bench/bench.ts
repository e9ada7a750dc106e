/**
 * `npm run bench`: runs the benchmark suites, prints a table and writes bench-results.json
 * at the repository root. `npm run bench -- --only t2i` runs one suite (the file keeps the other
 * suites' figures from their last run).
 */
import { availableParallelism, cpus } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { formatTable, readFigures, writeFigures, type BenchSuite, type Figure } from './figures.js';
import { textToImageSuite } from './text-to-image.bench.js';
import { autodiffSuite } from './autodiff.bench.js';
import { mspSuite } from './msp.bench.js';

const SUITES: BenchSuite[] = [textToImageSuite, autodiffSuite, mspSuite];

async function run(): Promise<void> {
  const { values } = parseArgs({ options: { only: { type: 'string' } } });
  const suites = values.only ? SUITES.filter((s) => s.name === values.only) : SUITES;
  if (suites.length === 0) {
    process.stderr.write(
      `bench: unknown suite "${values.only}"; expected one of ${SUITES.map((s) => s.name).join(', ')}\n`,
    );
    process.exitCode = 2;
    return;
  }
  const log = (line: string) => process.stderr.write(`${line}\n`);
  log(
    `machine: ${cpus()[0]?.model ?? 'unknown CPU'}, ${availableParallelism()} threads, Node ${process.version}`,
  );
  const figures: Figure[] = [];
  for (const suite of suites) figures.push(...(await suite.run(log)));
  figures.push({
    name: 'process.peak_rss_mb',
    value: process.resourceUsage().maxRSS / 1024,
    unit: 'MB',
    label: 'peak resident memory of the whole benchmark run',
  });
  process.stdout.write(formatTable(figures) + '\n');
  const root = join(fileURLToPath(new URL('.', import.meta.url)), '..', '..', '..');
  const out = join(root, 'bench-results.json');
  // A run of some suites (--only) keeps the other suites' figures from the last run.
  const ran = new Set([...suites.map((s) => s.name), 'process']);
  const kept = values.only
    ? (await readFigures(out)).filter((f) => !ran.has(f.name.slice(0, f.name.indexOf('.'))))
    : [];
  await writeFigures(out, [...kept, ...figures]);
  process.stdout.write(
    `\nwrote ${figures.length} figures to ${out}` +
      (kept.length > 0 ? ` (and kept ${kept.length} of other suites)` : '') +
      '\n',
  );
}

await run();
