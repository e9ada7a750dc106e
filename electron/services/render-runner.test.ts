import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readRareTokens } from './render-engine.js';
import { WorkerRenderRunner } from './render-runner.js';

// The happy path (a render in the worker with progress and previews) runs in browser-server.test.ts.
describe('WorkerRenderRunner', () => {
  let dir = '';
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'msp-runner-'));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('reports a model folder that cannot load, and rejects renders with the same reason', async () => {
    const runner = new WorkerRenderRunner({
      modelDir: join(dir, 'no-such-model'),
      randomModelDir: join(dir, 'r'),
    });
    try {
      await expect(runner.info()).rejects.toThrow(/^cannot load the model: .*no-such-model.*is not a folder/);
      const scene = {
        request: {} as never,
        baseDir: dir,
        files: { segmentMap: join(dir, 'map.png') },
      };
      await expect(runner.render({ scene, previewEvery: 0 })).rejects.toThrow(/cannot load the model/);
    } finally {
      await runner.close();
    }
  });

  it('refuses to start a render whose signal is already aborted', async () => {
    const runner = new WorkerRenderRunner({ modelDir: join(dir, 'none'), randomModelDir: join(dir, 'r') });
    const controller = new AbortController();
    controller.abort();
    const scene = { request: {} as never, baseDir: dir, files: { segmentMap: '' } };
    await expect(runner.render({ scene, previewEvery: 0 }, { signal: controller.signal })).rejects.toThrow();
    await runner.close();
  });
});

describe('readRareTokens', () => {
  it("reads the model's identifier tokens and ignores anything that is not one word", async () => {
    const dir = await mkdtemp(join(tmpdir(), 'msp-rare-'));
    try {
      expect(await readRareTokens(dir)).toEqual([]);
      await writeFile(
        join(dir, 'rare_tokens.json'),
        JSON.stringify({ identifiers: ['sks', 'two words', 7, 'zwx'] }),
      );
      expect(await readRareTokens(dir)).toEqual(['sks', 'zwx']);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
