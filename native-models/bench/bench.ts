/**
 * `npm run bench`: runs the benchmark suites, prints a table and writes bench-results.json
 * at the repository root. `npm run bench -- --only t2i` runs one suite.
 */
import { availableParallelism, cpus } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { formatTable, writeFigures, type BenchSuite, type Figure } from './figures.js';
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
  await writeFigures(out, figures);
  process.stdout.write(`\nwrote ${figures.length} figures to ${out}\n`);
}

await run();
