/**
 * The `msp` command line: in-process through main() for speed, and once through the built
 * bin/msp.js to prove the installed command works (npm test builds dist/ first).
 */
import { sharedData } from './helpers/shared-data.js';
import { afterAll, describe, expect, it } from 'vitest';
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { readPngText } from '../native-models/image/png.js';
import {
  cleanupTempDirs,
  foldedRandomModel,
  makeTempDir,
  sharedRandomModel,
} from './helpers/random-model.js';
import { runMsp as msp } from './helpers/cli.js';

afterAll(cleanupTempDirs);

describe('msp', () => {
  it('lists its commands and has --help on every verb', async () => {
    const help = await msp('--help');
    expect(help.code).toBe(0);
    for (const verb of ['inspect', 'tokenize', 'create-random-model', 'generate']) {
      expect(help.stdout).toContain(verb);
      const r = await msp(verb, '--help');
      expect(r.code).toBe(0);
      expect(r.stdout).toMatch(new RegExp(`^usage: msp ${verb}`));
    }
    expect((await msp('paint')).code).toBe(2);
  });

  it('inspect validates a model and prints inputs, outputs, sizes and the execution provider', async () => {
    const dir = await sharedRandomModel();
    const r = await msp('inspect', dir);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('execution provider: cpu');
    expect(r.stdout).toContain(
      'latent channels 4, VAE scale factor 8, scaling factor 0.18215, hidden size 32, sequence length 16',
    );
    expect(r.stdout).toContain('  in  timestep: int64 [timestep_batch]');
    expect(r.stdout).toContain('  out out_sample: float32 [batch, 4, height, width]');
    const json = await msp('inspect', dir, '--json');
    expect(JSON.parse(json.stdout)).toMatchObject({ executionProvider: 'cpu', sizes: { vaeScaleFactor: 8 } });
  });

  it('inspect lists a unet/ that takes the ControlNet residuals itself once', async () => {
    const r = await msp('inspect', await foldedRandomModel());
    expect(r.code).toBe(0);
    expect(r.stdout).toContain(
      'unet_controlnet (unet/model.onnx): the unet above, which takes the ControlNet residuals itself\n',
    );
    expect(r.stdout.match(/ {2}in {2}mid_block_additional_residual/g)).toHaveLength(1);
  });

  it('inspect of a broken folder fails with one line naming the file', async () => {
    const empty = await makeTempDir();
    const r = await msp('inspect', empty);
    expect(r.code).toBe(1);
    expect(r.stderr).toBe('msp inspect: scheduler/scheduler_config.json: is missing\n');
  });

  it('tokenize prints ids and count, and warns about prompts longer than the sequence length', async () => {
    const dir = await sharedRandomModel();
    const short = await msp('tokenize', '--model', dir, 'a cat', '--json');
    const parsed = JSON.parse(short.stdout) as { ids: number[]; count: number; sequenceLength: number };
    expect(parsed.count).toBe(parsed.ids.length);
    expect(parsed.sequenceLength).toBe(16);
    expect(short.stderr).toBe('');
    const long = await msp(
      'tokenize',
      '--model',
      dir,
      'a very long prompt about a cartoon cat waving in a park on a sunny day with friends',
    );
    expect(long.code).toBe(0);
    expect(long.stderr).toMatch(
      /^warning: the prompt has \d+ tokens but the model reads 16; everything after ".+" is ignored\n$/,
    );
    expect((await msp('tokenize', 'a cat')).code).toBe(2);
  });

  it.skipIf(!existsSync(sharedData('clip-tokenizer', 'vocab.json')))(
    'tokenize --tokenizer reproduces real CLIP ids',
    async () => {
      const r = await msp(
        'tokenize',
        '--tokenizer',
        sharedData('clip-tokenizer'),
        'a photo of a cat',
        '--json',
      );
      expect(JSON.parse(r.stdout)).toMatchObject({
        ids: [49406, 320, 1125, 539, 320, 2368, 49407],
        count: 7,
      });
    },
  );

  it('generate writes a PNG with its parameters; the same seed gives the same bytes', async () => {
    const dir = await sharedRandomModel();
    const out = await makeTempDir();
    const args = [
      'generate',
      '--model',
      dir,
      '--prompt',
      'a red car',
      '--steps',
      '3',
      '--seed',
      '7',
      '--width',
      '32',
      '--height',
      '48',
    ];
    const a = await msp(...args, '--out', join(out, 'a.png'));
    expect(a.code).toBe(0);
    expect(a.stdout).toMatch(/^wrote .*a\.png \(seed 7, [\d.]+s on cpu\)\n$/);
    await msp(...args, '--out', join(out, 'b.png'));
    const [pa, pb] = await Promise.all([readFile(join(out, 'a.png')), readFile(join(out, 'b.png'))]);
    expect(pa.equals(pb)).toBe(true);
    expect(readPngText(pa).parameters).toContain(
      'Steps: 3, Sampler: ddim, CFG scale: 7.5, Seed: 7, Size: 32x48',
    );
  });

  it('generate refuses bad arguments with exit code 2 and writes nothing', async () => {
    const dir = await sharedRandomModel();
    const out = await makeTempDir();
    const png = join(out, 'x.png');
    const cases: [string[], RegExp][] = [
      [['--width', '60', '--height', '64'], /width 60 is not a multiple of 8/],
      [['--steps', '0'], /--steps must be an integer >= 1, got "0"/],
      [['--scheduler', 'plms'], /unknown scheduler "plms" for --scheduler/],
      [['--guidance', 'lots'], /--guidance must be a number/],
      [['--frobnicate'], /Unknown option '--frobnicate'/],
    ];
    for (const [extra, message] of cases) {
      const r = await msp('generate', '--model', dir, '--prompt', 'x', '--out', png, ...extra);
      expect(r.code, extra.join(' ')).toBe(2);
      expect(r.stderr).toMatch(message);
    }
    expect(await readdir(out)).toEqual([]);
  });

  it('generate without --model uses the embedded tiny model at its own size', async () => {
    const png = join(await makeTempDir(), 'car.png');
    const saved = process.env.MSP_MODEL_DIR;
    delete process.env.MSP_MODEL_DIR; // the default model, whatever the shell has
    try {
      const r = await msp(
        'generate',
        '--prompt',
        'a red car on a street',
        '--steps',
        '2',
        '--seed',
        '3',
        '--out',
        png,
      );
      expect(r.code, r.stderr).toBe(0);
      expect(r.stdout).toMatch(/^wrote .*car\.png \(seed 3, /);
    } finally {
      if (saved !== undefined) process.env.MSP_MODEL_DIR = saved;
    }
    const bytes = await readFile(png);
    expect([bytes.readUInt32BE(16), bytes.readUInt32BE(20)]).toEqual([128, 128]); // IHDR width, height
    expect(readPngText(bytes).parameters).toContain(
      'Steps: 2, Sampler: ddim, CFG scale: 7.5, Seed: 3, Size: 128x128, Model: tiny-sd',
    );
  });

  it('create-random-model writes a valid folder through the built bin/msp.js', async () => {
    const bin = join(import.meta.dirname, '..', 'bin', 'msp.js');
    const built = existsSync(join(import.meta.dirname, '..', 'dist', 'native-models', 'cli', 'main.js'));
    expect(built, 'dist/ is missing: run npm run build (npm test does)').toBe(true);
    const dir = join(await makeTempDir(), 'random');
    const run = promisify(execFile);
    const created = await run(process.execPath, [bin, 'create-random-model', dir]);
    expect(created.stdout).toMatch(/^wrote a random-weight model to /);
    const inspected = await run(process.execPath, [bin, 'inspect', dir, '--json']);
    expect(JSON.parse(inspected.stdout)).toMatchObject({ sizes: { sequenceLength: 16 } });
  });
});
