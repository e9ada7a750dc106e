import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { STEPS_BEFORE_FILE, stepsBefore } from './run-steps.js';

describe('stepsBefore', () => {
  let root: string;
  let out: string;
  let checkpointDir: string;
  beforeEach(async () => {
    root = await mkdtemp(join(tmpdir(), 'run-steps-'));
    out = root;
    checkpointDir = join(root, 'work', 'unet-text-layers-1-2-2');
    await writeFile(
      join(out, 'metrics.json'),
      JSON.stringify({ unet_text_encoder_steps: 5000, unet_layers_grown_steps: 4000, vae_psnr_db: 28.09 }),
    );
  });
  afterEach(async () => rm(root, { recursive: true, force: true }));

  const ask = (resume: boolean, warn?: (line: string) => void) =>
    stepsBefore({
      checkpointDir,
      metricsDir: out,
      resume,
      base: { unet_text_encoder_steps: 'folder', unet_layers_grown_steps: 'zero', unet_steps: 'folder' },
      ...(warn ? { warn } : {}),
    });

  it("starts a fresh run from the folder's counts (0 when absent or asked) and keeps them for resumes", async () => {
    expect(await ask(false)).toEqual({
      unet_text_encoder_steps: 5000,
      unet_layers_grown_steps: 0,
      unet_steps: 0,
    });
    // the run goes on and rewrites metrics.json; a resume still adds to the counts it started from
    await writeFile(join(checkpointDir, 'latest.json'), JSON.stringify({ checkpoint: 'step-000100' }));
    await writeFile(join(out, 'metrics.json'), JSON.stringify({ unet_text_encoder_steps: 5100 }));
    expect(await ask(true)).toEqual({
      unet_text_encoder_steps: 5000,
      unet_layers_grown_steps: 0,
      unet_steps: 0,
    });
    // without --resume the run starts again, from the folder's counts as they are now
    expect((await ask(false)).unet_text_encoder_steps).toBe(5100);
    expect(JSON.parse(await readFile(join(checkpointDir, STEPS_BEFORE_FILE), 'utf8'))).toMatchObject({
      unet_text_encoder_steps: 5100,
    });
  });

  it('treats --resume without a checkpoint as a fresh run', async () => {
    expect((await ask(true)).unet_text_encoder_steps).toBe(5000);
  });

  it('counts from 0 and says so when a resumed folder predates the file', async () => {
    await ask(false);
    await rm(join(checkpointDir, STEPS_BEFORE_FILE));
    await writeFile(join(checkpointDir, 'latest.json'), JSON.stringify({ checkpoint: 'step-000100' }));
    const warnings: string[] = [];
    expect(await ask(true, (l) => warnings.push(l))).toEqual({
      unet_text_encoder_steps: 0,
      unet_layers_grown_steps: 0,
      unet_steps: 0,
    });
    expect(warnings.join('\n')).toMatch(/steps-before\.json is missing.*count this run's steps only/);
  });

  it('refuses a metrics.json it cannot read rather than counting from 0', async () => {
    await writeFile(join(out, 'metrics.json'), '{ "unet_steps": 40');
    await expect(ask(false)).rejects.toThrow(/metrics\.json is not valid JSON/);
  });
});
