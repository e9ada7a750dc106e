import { afterAll, describe, expect, it } from 'vitest';
import { cp, writeFile, readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import * as ort from 'onnxruntime-node';
import {
  classPrompt,
  clipInferenceModels,
  clipParameterCounts,
  clipPixels,
  evaluateClip,
  tokenizeBatch,
  trainClip,
  trainingCaption,
  worldClipBatch,
  writeClip,
  type ClipArchitecture,
  type ClipPair,
  type ClipBatchSource,
} from './clip-stage.js';
import { CLIPTokenizer } from '../tokenizer/clip-tokenizer.js';
import { createRandomModel } from '../models/random-model.js';
import { loadModelFolder } from '../models/model-folder.js';
import { generateScene } from '../world/scene.js';
import { SUBJECT_CLASSES } from '../world/classes.js';
import { Rng } from '../tensor/random.js';
import { cleanupTempDirs, makeTempDir } from '../../test/helpers/random-model.js';

afterAll(cleanupTempDirs);

const TOKENIZER = join(import.meta.dirname, '..', 'weights', 'tiny-sd', 'tokenizer');

function tinyArchitecture(vocabSize: number): ClipArchitecture {
  return {
    text: { vocabSize, hiddenSize: 32, layers: 1, heads: 2, maxPositions: 48 },
    imageSize: 32,
    imageChannels: [8, 16],
    normGroups: 4,
    embedDim: 16,
  };
}

/** The same 8 pairs in every batch, so a few steps must fit them. */
function fixedPairs(count: number): ClipBatchSource {
  const rng = new Rng(3);
  const pool: ClipPair[] = Array.from({ length: count }, () => {
    const scene = generateScene(rng, { size: 64, subjects: 1, antialias: false });
    return { pixels: clipPixels(scene.image, 32), caption: scene.caption };
  });
  return (_rng, _size, n) => pool.slice(0, n);
}

describe('tiny CLIP stage', () => {
  it('averages images down to [-1, 1] pixel values and writes short captions in the world grammar', () => {
    const image = { width: 4, height: 4, data: new Uint8Array(48).fill(255) };
    image.data.set([0, 0, 0], 0); // one black pixel in the top-left 2x2 block
    const px = clipPixels(image, 2);
    expect(px.length).toBe(12);
    expect(px[0]).toBeCloseTo(0.5, 5); // (3 * 255 / 4) / 127.5 - 1
    expect(px[1]).toBeCloseTo(1, 5);
    expect(() => clipPixels(image, 3)).toThrow(RangeError);

    const rng = new Rng(11);
    for (let k = 0; k < 50; k++) {
      const scene = generateScene(rng, { size: 32, antialias: false });
      const caption = trainingCaption(rng, scene);
      for (const s of scene.subjects) expect(caption).toContain(s.className);
      expect(caption.split(' ').length).toBeGreaterThanOrEqual(2);
    }
    const batch = worldClipBatch(new Rng(2), 32, 16);
    expect(batch).toHaveLength(16);
    expect(batch[0].pixels.length).toBe(3 * 32 * 32);
    expect(SUBJECT_CLASSES.map(classPrompt)).toContain('a cartoon man');
    expect(SUBJECT_CLASSES.map(classPrompt)).toContain('a cat');
  });

  it('reduces the contrastive loss in a few steps and exports models in the stated contracts', async () => {
    const tokenizer = await CLIPTokenizer.fromFolder(TOKENIZER);
    const a = tinyArchitecture(tokenizer.vocabSize);
    const losses: number[] = [];
    const result = await trainClip({
      architecture: a,
      tokenizer,
      batches: fixedPairs(8),
      steps: 30,
      batch: 8,
      lr: 3e-3,
      warmupSteps: 3,
      onProgress: (p) => losses.push(p.loss),
    });
    expect(result.step).toBe(30);
    // untrained, the symmetric InfoNCE of 8 pairs is about ln 8 or more (random logits scaled by 14)
    expect(losses[0]).toBeGreaterThan(1.5);
    const mean = (xs: number[]) => xs.reduce((s, x) => s + x, 0) / xs.length;
    expect(mean(losses.slice(-5))).toBeLessThan(0.6 * mean(losses.slice(0, 5)));
    const counts = clipParameterCounts(result.parameters);
    expect(counts.total).toBe(counts.textTower + counts.imageTower + 1);

    const models = clipInferenceModels(result.parameters, a, tokenizer.eosTokenId);
    const B = 3;
    const S = a.imageSize;
    const image = await ort.InferenceSession.create(models.imageEncoder);
    expect(image.inputNames).toEqual(['pixel_values']);
    expect(image.outputNames).toEqual(['image_embeds']);
    const pixels = new ort.Tensor('float32', new Rng(5).randn(B * 3 * S * S), [B, 3, S, S]);
    const imageEmbeds = (await image.run({ pixel_values: pixels })).image_embeds;
    expect(imageEmbeds.dims).toEqual([B, a.embedDim]);
    const norm = (data: Float32Array, row: number, d: number) =>
      Math.hypot(...data.subarray(row * d, (row + 1) * d));
    for (let i = 0; i < B; i++)
      expect(norm(imageEmbeds.data as Float32Array, i, a.embedDim)).toBeCloseTo(1, 4);

    const captions = ['a red cat', 'a cartoon man in blue waving on a beach', 'a green tree'];
    const ids = tokenizeBatch(tokenizer, captions, 48);
    const text = await ort.InferenceSession.create(models.textEmbedder);
    expect(text.inputNames).toEqual(['input_ids']);
    expect(text.outputNames).toEqual(['text_embeds']);
    const textEmbeds = (await text.run({ input_ids: ids })).text_embeds;
    expect(textEmbeds.dims).toEqual([B, a.embedDim]);
    for (let i = 0; i < B; i++)
      expect(norm(textEmbeds.data as Float32Array, i, a.embedDim)).toBeCloseTo(1, 4);

    const encoder = await ort.InferenceSession.create(models.textEncoder);
    expect(encoder.inputNames).toEqual(['input_ids']);
    expect(encoder.outputNames).toEqual(['last_hidden_state', 'pooler_output']);
    const out = await encoder.run({ input_ids: ids });
    const H = a.text.hiddenSize;
    expect(out.last_hidden_state.dims).toEqual([B, 48, H]);
    expect(out.pooler_output.dims).toEqual([B, H]);
    // pooler_output is the hidden state at the end token
    const eos = tokenizer.encode(captions[1]).ids.length - 1;
    const hidden = out.last_hidden_state.data as Float32Array;
    const pooled = out.pooler_output.data as Float32Array;
    for (let k = 0; k < H; k++) expect(pooled[H + k]).toBeCloseTo(hidden[(48 + eos) * H + k], 5);
    await Promise.all([image.release(), text.release(), encoder.release()]);

    // the exported weights are stored as float16: about 2 bytes per weight
    expect(models.textEncoder.byteLength).toBeLessThan(3 * counts.textEncoder);

    // the held-out evaluation runs end to end (the figures of an untrained model mean nothing)
    const e = await evaluateClip(models, tokenizer, a, { perClass: 1, pairs: 5, size: 64 });
    expect(e.images).toBe(13);
    for (const v of [e.zeroShotAcc, e.colorAcc, e.captionR1, e.captionR1TextToImage]) {
      expect(v).toBeGreaterThanOrEqual(0);
      expect(v).toBeLessThanOrEqual(1);
    }

    // text_encoder/ passes the model folder contract inside a complete folder
    const dir = await createRandomModel(join(await makeTempDir(), 'model'), {
      hiddenSize: 32,
      sequenceLength: 48,
      controlnet: false,
    });
    await rm(join(dir, 'tokenizer'), { recursive: true });
    await cp(TOKENIZER, join(dir, 'tokenizer'), { recursive: true });
    await writeClip(dir, models, a, { eosTokenId: tokenizer.eosTokenId, bosTokenId: tokenizer.bosTokenId });
    const folder = await loadModelFolder(dir);
    expect(folder.sizes.hiddenSize).toBe(32);
    expect(folder.sizes.sequenceLength).toBe(48);
    const config = JSON.parse(await readFile(join(dir, 'text_encoder', 'config.json'), 'utf8')) as Record<
      string,
      unknown
    >;
    expect(config).toMatchObject({
      hidden_size: 32,
      max_position_embeddings: 48,
      vocab_size: tokenizer.vocabSize,
    });
    const clipConfig = JSON.parse(await readFile(join(dir, 'clip', 'config.json'), 'utf8')) as {
      projection_dim: number;
      image_encoder: { image_size: number };
    };
    expect(clipConfig.projection_dim).toBe(16);
    expect(clipConfig.image_encoder.image_size).toBe(32);

    // textEncoder: false leaves text_encoder/ as it is and writes clip/
    await rm(join(dir, 'clip'), { recursive: true });
    await writeFile(join(dir, 'text_encoder', 'model.onnx'), 'the UNet was trained on this');
    await writeClip(
      dir,
      models,
      a,
      { eosTokenId: tokenizer.eosTokenId, bosTokenId: tokenizer.bosTokenId },
      { textEncoder: false },
    );
    expect(await readFile(join(dir, 'text_encoder', 'model.onnx'), 'utf8')).toBe(
      'the UNet was trained on this',
    );
    expect((await readFile(join(dir, 'clip', 'text_encoder.onnx'))).length).toBeGreaterThan(0);
  }, 120_000);
});
