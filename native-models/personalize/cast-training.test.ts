import { access, mkdtemp, readFile, rm, writeFile, mkdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createRandomModel } from '../models/random-model.js';
import { loadModelFolder } from '../models/model-folder.js';
import { readOnnxWeights } from '../training/onnx-weights.js';
import { identityReferences, PAIR_CAST } from '../../test/helpers/cast.js';
import { cleanupTempDirs, foldedRandomModel } from '../../test/helpers/random-model.js';
import { encodePng } from '../image/png.js';
import { Runtime } from '../runtime/session.js';
import { StableDiffusion } from '../pipelines/stable-diffusion.js';
import { textToImage } from '../pipelines/text-to-image.js';
import { CastError, checkCastForModel, readCastFile } from './cast-file.js';
import {
  compositeRegionMasks,
  trainCast,
  type CastTrainingOptions,
  type CastTrainingProgress,
} from './cast-training.js';
import type { AugmentedSample } from './augment.js';

/** Small settings: the random model trains a few steps in seconds. */
const QUICK: Partial<CastTrainingOptions> = {
  steps: 4,
  batch: 2,
  classImages: 1,
  samplesPerSubject: 3,
  compositesPerSubject: 1,
  segmentationSteps: 1,
  checkpointEvery: 2,
};

describe('cast training', () => {
  let root: string;
  let base: string;
  beforeAll(async () => {
    root = await mkdtemp(join(tmpdir(), 'cast-'));
    base = await createRandomModel(join(root, 'base'));
  });
  afterAll(async () => {
    await rm(root, { recursive: true, force: true });
    await cleanupTempDirs();
  });

  it('fine-tunes the whole UNet into a variant folder that loads and renders, with a cast segmentation model', async () => {
    const outDir = join(root, 'full');
    const phases = new Set<string>();
    const result = await trainCast({
      ...QUICK,
      baseModelDir: base,
      cast: PAIR_CAST,
      outDir,
      onProgress: (p) => phases.add(p.phase),
    });
    expect(result.stoppedBy).toBe('done');
    expect(result.unetSteps).toBe(4);
    expect(result.manifest.method).toBe('full');
    expect([...phases]).toEqual(['prepare', 'class-images', 'encode', 'unet', 'segmentation', 'export']);

    // the UNet and its ControlNet-aware twin changed together; everything else is the base model's
    const before = new Map(
      (await readOnnxWeights(join(base, 'unet', 'model.onnx'))).map((w) => [w.name, w.data]),
    );
    const after = await readOnnxWeights(join(outDir, 'unet', 'model.onnx'));
    const twin = new Map(
      (await readOnnxWeights(join(outDir, 'unet_controlnet', 'model.onnx'))).map((w) => [w.name, w.data]),
    );
    const changed = after.filter((w) => {
      const b = before.get(w.name);
      return b !== undefined && b.some((v, i) => Math.abs(v - w.data[i]) > 1e-7);
    });
    expect(changed.length).toBeGreaterThan(after.length / 2);
    for (const w of changed) expect(twin.get(w.name)).toEqual(w.data);
    expect(await readFile(join(outDir, 'vae_decoder', 'model.onnx'))).toEqual(
      await readFile(join(base, 'vae_decoder', 'model.onnx')),
    );

    const classes = JSON.parse(await readFile(join(outDir, 'segmentation', 'classes.json'), 'utf8')) as {
      classes: string[];
    };
    expect(classes.classes).toEqual(['background', 'sks', 'zwx']);
    const manifest = JSON.parse(await readFile(join(outDir, 'cast.json'), 'utf8')) as {
      subjects: { identifier: string; prompt: string; segmentationClass: number }[];
    };
    expect(manifest.subjects.map((s) => [s.prompt, s.segmentationClass])).toEqual([
      ['a sks cartoon man', 1],
      ['a zwx cat', 2],
    ]);
    // the work folder (checkpoints) is gone once the variant is complete
    await expect(access(`${outDir}.training`)).rejects.toThrow();

    const runtime = new Runtime();
    const sd = await StableDiffusion.load(outDir, runtime);
    const { image } = await textToImage(sd, { prompt: 'a sks cartoon man', steps: 2, seed: 1 });
    expect(image.width).toBe(64);
    await runtime.dispose();
  }, 120_000);

  it('fine-tunes a unet/ that takes the ControlNet residuals itself, feeding it zeros', async () => {
    // the other layout of the contract: the ControlNet-aware UNet is unet/, no unet_controlnet/
    const folded = await foldedRandomModel(base);
    const outDir = join(root, 'folded');
    const result = await trainCast({ ...QUICK, steps: 2, baseModelDir: folded, cast: PAIR_CAST, outDir });
    expect(result.stoppedBy).toBe('done');
    await expect(access(join(outDir, 'unet_controlnet'))).rejects.toThrow();
    const variant = await loadModelFolder(outDir);
    expect(variant.components.unet_controlnet).toBe(variant.components.unet);
    const before = new Map(
      (await readOnnxWeights(join(folded, 'unet', 'model.onnx'))).map((w) => [w.name, w.data]),
    );
    const after = await readOnnxWeights(join(outDir, 'unet', 'model.onnx'));
    const moved = after.filter((w) => before.get(w.name)?.some((v, i) => Math.abs(v - w.data[i]) > 1e-7));
    expect(moved.length).toBeGreaterThan(after.length / 2);
  }, 120_000);

  it('trains LoRA adapters on the attention projections and merges them', async () => {
    const outDir = join(root, 'lora');
    const result = await trainCast({
      ...QUICK,
      method: 'lora',
      baseModelDir: base,
      cast: PAIR_CAST,
      outDir,
      segmentationSteps: 0,
    });
    expect(result.manifest.method).toBe('lora');
    const before = new Map(
      (await readOnnxWeights(join(base, 'unet', 'model.onnx'))).map((w) => [w.name, w.data]),
    );
    const changed = (await readOnnxWeights(join(outDir, 'unet', 'model.onnx')))
      .filter((w) => before.get(w.name)?.some((v, i) => Math.abs(v - w.data[i]) > 1e-7))
      .map((w) => w.name);
    expect(changed.length).toBeGreaterThan(0);
    for (const name of changed) expect(name).toMatch(/attn[12]\.to_(q|k|v|out\.0)\.weight$/);
    await access(join(outDir, 'unet', 'cast_lora.safetensors'));
    await expect(access(join(outDir, 'segmentation'))).rejects.toThrow();
  }, 120_000);

  it('stops on cancel with a checkpoint, and resumes from it to the same end', async () => {
    const outDir = join(root, 'resumed');
    const controller = new AbortController();
    const seen: CastTrainingProgress[] = [];
    const first = await trainCast({
      ...QUICK,
      baseModelDir: base,
      cast: PAIR_CAST,
      outDir,
      signal: controller.signal,
      onProgress: (p) => {
        if (p.phase === 'unet' && p.step === 2) controller.abort();
      },
    });
    expect(first.stoppedBy).toBe('cancelled');
    expect(first.unetSteps).toBe(2);
    await access(join(`${outDir}.training`, 'unet', 'latest.json'));
    await expect(access(outDir)).rejects.toThrow();

    const second = await trainCast({
      ...QUICK,
      baseModelDir: base,
      cast: PAIR_CAST,
      outDir,
      resume: true,
      onProgress: (p) => seen.push(p),
    });
    expect(second.stoppedBy).toBe('done');
    expect(seen.filter((p) => p.phase === 'unet').map((p) => p.step)).toEqual([3, 4]);
    await access(join(outDir, 'cast.json'));
  }, 120_000);

  it('trains on subject regions of the joint composites with their own prompts when asked', async () => {
    const lines: string[] = [];
    const result = await trainCast({
      ...QUICK,
      baseModelDir: base,
      cast: PAIR_CAST,
      outDir: join(root, 'regional'),
      segmentationSteps: 0,
      compositesPerSubject: 2,
      regionalShare: 1,
      log: (line) => lines.push(line),
    });
    expect(result.stoppedBy).toBe('done');
    // 4 composites of the 2 subjects: up to 8 regions (a region wholly painted over has none)
    const count = Number(
      /regional samples: (\d+) subject regions of joint composites/.exec(lines.join('\n'))?.[1],
    );
    expect(count).toBeGreaterThanOrEqual(4);
    expect(count).toBeLessThanOrEqual(8);
    await expect(
      trainCast({
        ...QUICK,
        baseModelDir: base,
        cast: PAIR_CAST,
        outDir: join(root, 'bad'),
        regionalShare: 1.5,
      }),
    ).rejects.toThrow('the regional share must be between 0 and 1, got 1.5');
    await expect(access(join(root, 'bad.training'))).rejects.toThrow();
  }, 120_000);

  it('renders previews with the weights so far', async () => {
    const previews: number[] = [];
    await trainCast({
      ...QUICK,
      baseModelDir: base,
      cast: PAIR_CAST,
      outDir: join(root, 'previews'),
      segmentationSteps: 0,
      previewEvery: 2,
      onPreview: (p) => {
        previews.push(p.step);
        expect(p.images.map((i) => i.prompt)).toEqual(['a sks cartoon man', 'a zwx cat']);
        expect(p.images[0].image.width).toBe(64);
      },
    });
    expect(previews).toEqual([2]);
  }, 120_000);
});

describe('composite regions', () => {
  it('grow each box by 3 pixels, paint later subjects over earlier ones, and give each latent pixel to its majority', () => {
    const S = 32;
    const box = (x0: number, y0: number, x1: number, y1: number) => ({ x0, y0, x1, y1 });
    const subject = (b: ReturnType<typeof box>, k: number) => ({
      subject: k,
      name: `s${k}`,
      reference: 0,
      zoom: 0.4,
      crop: null,
      box: b,
      area: 0,
    });
    const sample = {
      image: { width: S, height: S, data: new Uint8Array(S * S * 3) },
      subjects: [subject(box(4, 4, 15, 27), 0), subject(box(14, 8, 26, 27), 1)],
    } as unknown as AugmentedSample;
    const [a, b] = compositeRegionMasks(sample, 4);
    const side = 8;
    const at = (m: Uint8Array, x: number, y: number) => m[y * side + x];
    // grown boxes: subject 0 x 1-18, y 1-30; subject 1 x 11-29, y 5-30, painted over subject 0
    expect(at(a, 0, 0)).toBe(1); // pixels x 0-3, y 0-3: 9 of 16 in subject 0's box
    expect(at(a, 2, 2)).toBe(1); // x 8-11: three columns subject 0, one subject 1
    expect(at(a, 3, 2)).toBe(0); // x 12-15: subject 1 painted over subject 0
    expect(at(b, 3, 2)).toBe(1);
    expect(at(a, 3, 0)).toBe(1); // x 12-15, y 0-3: above subject 1's region, still subject 0's
    expect(at(b, 6, 7)).toBe(1); // x 24-27, y 28-31: 12 of 16 in subject 1's box
    expect(at(b, 7, 7)).toBe(0); // x 28-31: 6 of 16, the rest is no region's
    for (let p = 0; p < side * side; p++) expect(a[p] + b[p]).toBeLessThanOrEqual(1);
  });
});

describe('cast checks', () => {
  const model = ['sks', 'zwx', 'qlv'];

  it('rejects duplicate identifiers, unknown identifiers, too few images and a cast larger than the token list', () => {
    const images = identityReferences(0);
    const subject = (identifier: string, n = 3) => ({
      identifier,
      classNoun: 'cat',
      images: images.slice(0, n),
    });
    expect(() => checkCastForModel({ name: 'c', subjects: [subject('sks'), subject('sks')] }, model)).toThrow(
      /both use the identifier 'sks'/,
    );
    expect(() => checkCastForModel({ name: 'c', subjects: [subject('bob')] }, model)).toThrow(
      /'bob' .* is not one of the model's identifier tokens: sks, zwx, qlv/,
    );
    expect(() => checkCastForModel({ name: 'c', subjects: [subject('sks', 2)] }, model)).toThrow(
      /has 2 reference images; a subject needs at least 3/,
    );
    const four = ['sks', 'zwx', 'qlv', 'bvx'].map((t) => subject(t));
    expect(() => checkCastForModel({ name: 'c', subjects: four }, model)).toThrow(
      /4 subjects, but the model reserves only 3 identifier tokens/,
    );
    expect(() => checkCastForModel({ name: 'c', subjects: [subject('sks')] }, model)).not.toThrow();
  });

  it('reads a cast file, reporting every unreadable image and bad field before training', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'cast-file-'));
    try {
      await mkdir(join(dir, 'a'));
      const pictures = identityReferences(0);
      for (const [i, image] of pictures.entries())
        await writeFile(join(dir, 'a', `${i}.png`), await encodePng(image));
      await writeFile(join(dir, 'a', 'broken.png'), 'not a picture');
      const write = (json: unknown) => writeFile(join(dir, 'cast.json'), JSON.stringify(json));

      await write({
        name: 'ok',
        subjects: [
          { identifier: 'sks', classNoun: 'cartoon man', images: ['a/0.png', 'a/1.png', 'a/2.png'] },
        ],
      });
      const cast = await readCastFile(join(dir, 'cast.json'));
      expect(cast.subjects[0].images.map((i) => i.width)).toEqual([128, 128, 128]);

      await write({
        subjects: [
          { identifier: 'sks', classNoun: 'cat', images: ['a/0.png', 'a/broken.png', 'a/missing.png'] },
        ],
      });
      const error = await readCastFile(join(dir, 'cast.json')).catch((e: unknown) => e as Error);
      expect(error).toBeInstanceOf(CastError);
      expect((error as Error).message).toMatch(/image a\/broken.png cannot be read/);
      expect((error as Error).message).toMatch(/image a\/missing.png cannot be read \(no such file\)/);

      await write({ subjects: [{ identifier: 'sks', classNoun: 'cat', images: ['a/0.png'] }] });
      await expect(readCastFile(join(dir, 'cast.json'))).rejects.toThrow(
        /has 1 reference image; a subject needs at least 3/,
      );
      await write({ subjects: [{ identifier: 'Two Words', classNoun: 'cat', images: [] }] });
      await expect(readCastFile(join(dir, 'cast.json'))).rejects.toThrow(
        /identifier must be one lower-case word/,
      );
      await write({
        subjects: [
          { name: 'A', identifier: 'sks', classNoun: 'cat', images: ['a/0.png', 'a/1.png', 'a/2.png'] },
          { name: 'B', identifier: 'sks', classNoun: 'dog', images: ['a/0.png', 'a/1.png', 'a/2.png'] },
        ],
      });
      await expect(readCastFile(join(dir, 'cast.json'))).rejects.toThrow(
        /subjects 'A' and 'B' both use the identifier 'sks'/,
      );
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
