/**
 * The default model: MSP_MODEL_DIR, else the shipped tiny model, which is complete and loads.
 */
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { defaultModelDir, embeddedModelDir, unpackedPath } from './default-model.js';
import { loadModelFolder } from './model-folder.js';
import { modelIndex } from './random-model.js';

describe('defaultModelDir', () => {
  it('is the shipped tiny model when MSP_MODEL_DIR is not set', () => {
    const dir = embeddedModelDir();
    expect(dir.replaceAll('\\', '/')).toMatch(/\/native-models\/weights\/tiny-sd$/);
    expect(defaultModelDir({})).toBe(dir);
  });

  it('is MSP_MODEL_DIR when set', () => {
    expect(defaultModelDir({ MSP_MODEL_DIR: '/models/sd15' })).toBe('/models/sd15');
  });

  it('names in model_index.json exactly the components the folder holds, as the training recipe writes it', async () => {
    const dir = embeddedModelDir();
    const index = JSON.parse(await readFile(join(dir, 'model_index.json'), 'utf8')) as Record<
      string,
      unknown
    >;
    expect(index).toEqual(
      modelIndex('unet', {
        note: 'MSP Studio tiny-world model, trained by npm run train:tiny (see MODEL_CARD.md)',
        scheduler: 'DDIMScheduler',
      }),
    );
    for (const [name, value] of Object.entries(index)) {
      if (name.startsWith('_') || (value as unknown[])[0] === null) continue;
      expect(existsSync(join(dir, name)), `${name}/ is missing`).toBe(true);
    }
  });

  it('loads as a 128x128 model with a ControlNet and a VAE encoder', async () => {
    const model = await loadModelFolder(embeddedModelDir());
    expect(model.sizes.defaultImageSize).toBe(128);
    expect(model.components.controlnet).toBeDefined();
    expect(model.components.vae_encoder).toBeDefined();
  });
});

describe('unpackedPath', () => {
  it('points a packaged app.asar path at app.asar.unpacked, where onnxruntime can open the files', () => {
    expect(unpackedPath('/opt/MSP Studio/resources/app.asar/native-models/weights/tiny-sd')).toBe(
      '/opt/MSP Studio/resources/app.asar.unpacked/native-models/weights/tiny-sd',
    );
    expect(unpackedPath('C:\\MSP\\resources\\app.asar\\native-models')).toBe(
      'C:\\MSP\\resources\\app.asar.unpacked\\native-models',
    );
  });

  it('leaves other paths alone', () => {
    for (const p of [
      '/work/main/native-models/weights/tiny-sd',
      '/x/app.asar.unpacked/y',
      '/x/my-app.asar/y',
    ])
      expect(unpackedPath(p)).toBe(p);
  });
});
