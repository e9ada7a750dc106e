import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cp, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import {
  CLIP_IMAGE_MEAN,
  CLIP_IMAGE_STD,
  MetricsError,
  OnnxClipEmbedder,
  SegmentationEncoder,
  bestPerPromptMean,
  clipI,
  clipImageProcessor,
  clipT,
  cosine,
  embedReferences,
  evaluatePanel,
  loadImageTextEmbedder,
  ReferenceEmbeddingCache,
  sas,
  segmentCrop,
  type ImageTextEmbedder,
} from './metrics.js';
import type { RgbImage } from '../image/image.js';
import { Graph } from '../onnx/graph.js';
import { ModelBuilder } from '../onnx/layers.js';
import { randomSegmentationModel } from '../pipelines/sal.js';
import { Rng } from '../tensor/random.js';
import { classPrompt } from '../tiny/clip-stage.js';
import { segmentationUnet, type SegmentationArchitecture } from '../tiny/segmentation-stage.js';
import { CLIPTokenizer } from '../tokenizer/clip-tokenizer.js';
import { SUBJECT_CLASSES } from '../world/classes.js';
import { generateScene } from '../world/scene.js';
import { cleanupTempDirs, makeTempDir } from '../../test/helpers/random-model.js';

const WEIGHTS = join(import.meta.dirname, '..', 'weights', 'tiny-sd');
const TINY_CLIP = join(WEIGHTS, 'clip');

afterAll(cleanupTempDirs);

/** A `width x height` image whose pixel p has value (p * 3 + c) mod 256 in channel c. */
function ramp(width: number, height: number): RgbImage {
  return { width, height, data: Uint8Array.from({ length: width * height * 3 }, (_, k) => k % 256) };
}

function boxMask(width: number, height: number, x0: number, y0: number, x1: number, y1: number): Uint8Array {
  const m = new Uint8Array(width * height);
  for (let y = y0; y <= y1; y++) for (let x = x0; x <= x1; x++) m[y * width + x] = 1;
  return m;
}

const at = (image: RgbImage, x: number, y: number) => {
  const o = 3 * (y * image.width + x);
  return [image.data[o], image.data[o + 1], image.data[o + 2]];
};

describe('segment crops', () => {
  it('square the segment box around its centre and keep or mask its surroundings', () => {
    const image = ramp(10, 8);
    const mask = boxMask(10, 8, 2, 1, 4, 2); // 3 x 2
    const crop = segmentCrop(image, mask);
    expect(crop.box).toEqual({ x0: 2, y0: 1, x1: 4, y1: 2 });
    expect(crop.square).toEqual({ x: 2, y: 0, side: 3 }); // centred: y = 1 + floor((2 - 3) / 2) = 0
    for (let y = 0; y < 3; y++)
      for (let x = 0; x < 3; x++) expect(at(crop.image, x, y)).toEqual(at(image, 2 + x, y));
    expect(Array.from(crop.mask)).toEqual([0, 0, 0, 1, 1, 1, 1, 1, 1]);
    const masked = segmentCrop(image, mask, { masked: true });
    expect(at(masked.image, 0, 0)).toEqual([128, 128, 128]); // outside the segment
    expect(at(masked.image, 1, 1)).toEqual(at(image, 3, 1));
  });

  it('shift the square inside the image, pad only when it cannot fit', () => {
    const image = ramp(10, 8);
    const edge = segmentCrop(image, boxMask(10, 8, 8, 3, 9, 6)); // 2 x 4 at the right edge
    expect(edge.square).toEqual({ x: 6, y: 3, side: 4 });
    expect(at(edge.image, 3, 0)).toEqual(at(image, 9, 3));
    const wide = ramp(10, 4);
    const all = segmentCrop(wide, new Uint8Array(40).fill(1));
    expect(all.square).toEqual({ x: 0, y: -3, side: 10 });
    expect(at(all.image, 5, 0)).toEqual([128, 128, 128]); // padding
    expect(at(all.image, 5, 3)).toEqual(at(wide, 5, 0));
    expect(all.mask.reduce((a, b) => a + b, 0)).toBe(40);
  });

  it('reject an empty segment and a segment of another size', () => {
    expect(() => segmentCrop(ramp(10, 8), new Uint8Array(80))).toThrow('the segment mask is empty');
    expect(() => segmentCrop(ramp(10, 8), new Uint8Array(81))).toThrow(
      'the segment mask has 81 pixels, the 10x8 image 80',
    );
  });
});

describe('CLIP-I and CLIP-T with the shipped tiny CLIP', () => {
  let clip: ImageTextEmbedder;
  beforeAll(async () => {
    clip = await loadImageTextEmbedder(TINY_CLIP);
  });
  afterAll(async () => {
    await clip.release();
  });

  it('loads from config.json and gives unit-length embeddings, also for odd image sizes', async () => {
    expect(clip.kind).toBe('MspTinyClip');
    const scene = generateScene(3, { subjects: 1 });
    const [a, b] = await clip.embedImages([
      scene.image,
      segmentCrop(scene.image, scene.subjects[0].mask).image,
    ]);
    const [t] = await clip.embedTexts(['a cat']);
    for (const v of [a, b, t]) expect(Math.hypot(...v)).toBeCloseTo(1, 5);
    expect(a.length).toBe(t.length);
  });

  it('scores an image against itself as 1, also as a segment crop against a masked reference', async () => {
    const scene = generateScene(5, { subjects: 2 });
    expect(await clipI(clip, scene.image, [scene.image])).toBeCloseTo(1, 5);
    const { mask } = scene.subjects[1];
    const own = await clipI(clip, scene.image, [{ image: scene.image, mask }], { segment: mask });
    expect(Math.abs(own - 1)).toBeLessThan(1e-5);
    const refs = await embedReferences(clip, [{ image: scene.image, mask }], { segment: mask });
    expect(await clipI(clip, scene.image, refs, { segment: mask })).toBeCloseTo(own, 6);
    const other = await clipI(clip, scene.image, [generateScene(6, { subjects: 1 }).image]);
    expect(other).toBeLessThan(1);
    expect(other).toBeGreaterThanOrEqual(-1);
  });

  it('CLIP-T ranks the right class prompt above a wrong one for most clean renders', async () => {
    const rng = new Rng(2024);
    let right = 0;
    const n = 20;
    const margins: number[] = [];
    for (let i = 0; i < n; i++) {
      const className = SUBJECT_CLASSES[i % SUBJECT_CLASSES.length];
      const wrong = SUBJECT_CLASSES[(i + 5) % SUBJECT_CLASSES.length];
      const { image } = generateScene(rng, { specs: [{ className }] });
      const good = await clipT(clip, image, classPrompt(className));
      const bad = await clipT(clip, image, classPrompt(wrong));
      margins.push(good - bad);
      if (good > bad) right++;
    }
    console.log(
      `CLIP-T: right class above a wrong one in ${right}/${n} renders, mean margin ${(margins.reduce((a, b) => a + b) / n).toFixed(3)}`,
    );
    expect(right / n).toBeGreaterThanOrEqual(0.8);
  });

  it('reports the paper aggregate: best generation per prompt, averaged', () => {
    expect(
      bestPerPromptMean([
        [0.21, 0.3],
        [0.25, 0.19],
      ]),
    ).toBeCloseTo(0.275, 10);
    expect(() => bestPerPromptMean([[]])).toThrow(MetricsError);
  });
});

describe('CLIP folders', () => {
  it('give clear errors for missing or unknown files', async () => {
    const dir = await makeTempDir();
    await expect(loadImageTextEmbedder(dir)).rejects.toThrow(`${join(dir, 'config.json')} is missing`);
    await writeFile(join(dir, 'config.json'), JSON.stringify({ model_type: 'bert' }));
    await expect(loadImageTextEmbedder(dir)).rejects.toThrow('is not a CLIP config this app knows');
    await cp(join(TINY_CLIP, 'config.json'), join(dir, 'config.json'));
    await expect(loadImageTextEmbedder(dir)).rejects.toThrow(`${join(dir, 'image_encoder.onnx')} is missing`);
    await writeFile(join(dir, 'config.json'), JSON.stringify({ model_type: 'clip' }));
    await expect(loadImageTextEmbedder(dir)).rejects.toThrow('the CLIP tokenizer in');
  });

  it('preprocess like Hugging Face CLIP: shortest side to 224, centre crop, CLIP mean and std', async () => {
    const uniform = { width: 300, height: 200, data: new Uint8Array(300 * 200 * 3).fill(200) };
    const px = await clipImageProcessor(uniform);
    expect(px.length).toBe(3 * 224 * 224);
    for (let c = 0; c < 3; c++) {
      const expected = (200 / 255 - CLIP_IMAGE_MEAN[c]) / CLIP_IMAGE_STD[c];
      expect(px[c * 224 * 224]).toBeCloseTo(expected, 5);
      expect(px[c * 224 * 224 + 224 * 224 - 1]).toBeCloseTo(expected, 5);
    }
    // 448 x 224, black left half, white right half: no resize (the shortest side is 224 already),
    // the centre crop takes columns 112..335
    const halves = new Uint8Array(448 * 224 * 3);
    for (let y = 0; y < 224; y++) halves.fill(255, 3 * (y * 448 + 224), 3 * (y * 448 + 448));
    const split = await clipImageProcessor({ width: 448, height: 224, data: halves });
    expect(split[0]).toBeCloseTo(-CLIP_IMAGE_MEAN[0] / CLIP_IMAGE_STD[0], 5); // column 112: black
    expect(split[111]).toBeCloseTo(-CLIP_IMAGE_MEAN[0] / CLIP_IMAGE_STD[0], 5); // column 223
    expect(split[112]).toBeCloseTo((1 - CLIP_IMAGE_MEAN[0]) / CLIP_IMAGE_STD[0], 5); // column 224: white
  });

  it('run a standard CLIP export: int64 input_ids with attention_mask, embeddings normalised', async () => {
    // a stand-in "CLIP": image_embeds = per-channel mean of pixel_values, text_embeds = masked sum of token rows
    const dir = await makeTempDir();
    await cp(join(WEIGHTS, 'tokenizer'), join(dir, 'tokenizer'), { recursive: true });
    const tokenizer = await CLIPTokenizer.fromFolder(join(dir, 'tokenizer'));
    const V = tokenizer.vocabSize;
    const vision = new Graph({ name: 'vision' });
    const pixels = vision.input('pixel_values', [2, 3, 224, 224]);
    vision.output(vision.op1('ReduceMean', [pixels, vision.ints([2, 3])], { keepdims: 0 }), 'image_embeds');
    const text = new Graph({ name: 'text' });
    const ids = text.input('input_ids', [2, 77], 'int64');
    const mask = text.input('attention_mask', [2, 77], 'int64');
    const table = new Rng(9).randn(V * 4);
    const rowsOf = text.op1('Gather', [text.initializer('token_embedding', table, [V, 4]), ids], { axis: 0 });
    const weights = text.op1('Unsqueeze', [text.op1('Cast', [mask], { to: 1 }), text.ints([2])]);
    const summed = text.op1('ReduceSum', [text.op1('Mul', [rowsOf, weights]), text.ints([1])], {
      keepdims: 0,
    });
    text.output(summed, 'text_embeds');
    await writeFile(
      join(dir, 'image_encoder.onnx'),
      vision.toBytes({ dynamicAxes: { pixel_values: { 0: 'batch' }, image_embeds: { 0: 'batch' } } }),
    );
    await writeFile(
      join(dir, 'text_encoder.onnx'),
      text.toBytes({
        dynamicAxes: {
          input_ids: { 0: 'batch' },
          attention_mask: { 0: 'batch' },
          text_embeds: { 0: 'batch' },
        },
      }),
    );
    await writeFile(
      join(dir, 'config.json'),
      JSON.stringify({
        architectures: ['CLIPModel'],
        model_type: 'clip',
        text_config: { max_position_embeddings: 77 },
      }),
    );
    const clip = await loadImageTextEmbedder(dir);
    try {
      expect(clip).toBeInstanceOf(OnnxClipEmbedder);
      const [image] = await clip.embedImages([
        { width: 256, height: 300, data: new Uint8Array(256 * 300 * 3).fill(90) },
      ]);
      const raw = [0, 1, 2].map((c) => (90 / 255 - CLIP_IMAGE_MEAN[c]) / CLIP_IMAGE_STD[c]);
      const norm = Math.hypot(...raw);
      raw.forEach((v, c) => expect(image[c]).toBeCloseTo(v / norm, 4)); // float32 mean of 50,176 values

      const [a, b, again] = await clip.embedTexts(['a sks cat', 'a red car in a park', 'a sks cat']);
      const encoded = tokenizer.encode('a sks cat');
      const expected = [0, 0, 0, 0];
      for (const id of encoded.ids) for (let d = 0; d < 4; d++) expected[d] += table[id * 4 + d];
      const n = Math.hypot(...expected);
      expected.forEach((v, d) => expect(a[d]).toBeCloseTo(v / n, 5));
      expect(again).toEqual(a);
      expect(cosine(a, b)).toBeLessThan(1);
    } finally {
      await clip.release();
    }
  });
});

describe('SAS', () => {
  it('compares encoder features of segment crops: 1 for identical crops, within [-1, 1] otherwise', async () => {
    const { model } = randomSegmentationModel(['background', 'sks man', 'zwx cat'], 3);
    const encoder = await SegmentationEncoder.create(model, { encoderPrefix: 'conv1.', imageSize: 64 });
    try {
      expect(encoder.featureShape).toEqual([1, 8, 64, 64]); // the LeakyReLU after conv1
      const scene = generateScene(11, { subjects: 2 });
      const [first, second] = scene.subjects.map((s) => s.mask);
      const same = await sas(encoder, scene.image, [{ image: scene.image, mask: first }], { segment: first });
      expect(Math.abs(same - 1)).toBeLessThan(1e-6);
      const scores = [
        await sas(encoder, scene.image, [{ image: scene.image, mask: second }], { segment: first }),
        await sas(encoder, scene.image, [generateScene(12).image, ramp(40, 30)], { segment: second }),
        await sas(encoder, scene.image, [scene.image]),
      ];
      for (const s of scores) {
        expect(s).toBeGreaterThanOrEqual(-1);
        expect(s).toBeLessThanOrEqual(1);
      }
      expect(scores[0]).toBeLessThan(1);
      await expect(
        sas(encoder, scene.image, [scene.image], { segment: new Uint8Array(scene.subjects[0].mask.length) }),
      ).rejects.toThrow('the segment mask is empty');
      await expect(sas(encoder, scene.image, [scene.image], { segment: new Uint8Array(10) })).rejects.toThrow(
        'the segment mask has 10 pixels',
      );
      await expect(encoder.features([new Float32Array(5)])).rejects.toThrow('expected a 3x64x64 picture');
    } finally {
      await encoder.release();
    }
  });

  it('names the rule failure and takes an explicit feature tensor', async () => {
    const { model } = randomSegmentationModel(['background', 'sks man'], 3);
    await expect(SegmentationEncoder.create(model, { imageSize: 64 })).rejects.toThrow(
      /weights named 'encoder\.\*' alone \(its weights start with 'conv1', 'classifier'\); name the encoder output with featureTensor/,
    );
    await expect(SegmentationEncoder.create(model, { featureTensor: 'nope', imageSize: 64 })).rejects.toThrow(
      "the segmentation model has no value 'nope' (featureTensor)",
    );
    const ruled = await SegmentationEncoder.create(model, { encoderPrefix: 'conv1.', imageSize: 64 });
    const named = await SegmentationEncoder.create(model, {
      featureTensor: ruled.featureTensor,
      imageSize: 64,
    });
    const pixels = new Rng(1).randn(3 * 64 * 64);
    expect(await named.features([pixels])).toEqual(await ruled.features([pixels]));
    await ruled.release();
    await named.release();
    await expect(SegmentationEncoder.load(await makeTempDir())).rejects.toThrow('model.onnx is missing');
  });

  it('finds the deepest encoder stage of the tiny U-Net: layer4 at 1/16, independent of the decoder', async () => {
    const a: SegmentationArchitecture = {
      imageSize: 32,
      stemChannels: 8,
      stageChannels: [8, 8, 16, 24],
      stageBlocks: [1, 1, 2, 1],
      decoderChannels: [8, 8, 8, 8],
      normGroups: 4,
      classes: ['background', 'sks man'],
    };
    const build = (decoderSeed: number) => {
      const m = new ModelBuilder('segmentation', 1);
      m.g.output(segmentationUnet(m, a, m.g.input('image', [1, 3, 32, 32])), 'logits');
      // the residual blocks' last norms start at zero; give every weight random values instead
      const rng = new Rng(77);
      const decoderRng = new Rng(decoderSeed);
      for (const p of m.params) {
        const encoder = p.name.startsWith('encoder.');
        const values = (encoder ? rng : decoderRng).randn(p.shape.reduce((x, y) => x * y, 1));
        m.g.setInitializer(
          p.name,
          values.map((v) => (p.name.includes('.conv') ? v * 0.3 : 1 + 0.1 * v)),
        );
      }
      m.g.storeWeightsAsFloat16();
      return m.g.toBytes({ dynamicAxes: { image: { 0: 'batch', 2: 'height', 3: 'width' } } });
    };
    const one = await SegmentationEncoder.create(build(1), { imageSize: 32 });
    const two = await SegmentationEncoder.create(build(2), { imageSize: 32 });
    try {
      expect(one.featureShape).toEqual([1, 24, 2, 2]);
      const pixels = new Rng(4).randn(3 * 32 * 32);
      const [f1] = await one.features([pixels]);
      const [f2] = await two.features([pixels]);
      expect(f2).toEqual(f1);
      expect(Math.hypot(...f1)).toBeGreaterThan(0);
    } finally {
      await one.release();
      await two.release();
    }
  });
});

describe('a whole panel', () => {
  it('scores CLIP-T on the whole image and CLIP-I and SAS per subject segment', async () => {
    const clip = await loadImageTextEmbedder(TINY_CLIP);
    const { model } = randomSegmentationModel(['background', 'a', 'b'], 5);
    const encoder = await SegmentationEncoder.create(model, { encoderPrefix: 'conv1.', imageSize: 64 });
    try {
      const scene = generateScene(21, { subjects: 2 });
      const scores = await evaluatePanel(
        {
          image: scene.image,
          prompt: scene.caption,
          subjects: scene.subjects.map((s, i) => ({
            name: `subject ${i}`,
            segment: s.mask,
            references: [{ image: scene.image, mask: s.mask }],
          })),
        },
        { clip, sas: encoder },
      );
      expect(scores.subjects.map((s) => s.name)).toEqual(['subject 0', 'subject 1']);
      for (const s of scores.subjects) {
        expect(s.clipI).toBeCloseTo(1, 5);
        expect(s.sas).toBeCloseTo(1, 5);
      }
      expect(scores.clipT).toBeGreaterThan(0);
      expect(scores.clipT).toBeLessThanOrEqual(1);
    } finally {
      await clip.release();
      await encoder.release();
    }
  });

  it("embeds each subject's references once across panels with a cache, with the same scores", async () => {
    const tiny = await loadImageTextEmbedder(TINY_CLIP);
    let clipImages = 0;
    const clip: ImageTextEmbedder = {
      kind: tiny.kind,
      embedImages: (images) => {
        clipImages += images.length;
        return tiny.embedImages(images);
      },
      embedTexts: (texts) => tiny.embedTexts(texts),
      release: () => tiny.release(),
    };
    const { model } = randomSegmentationModel(['background', 'a', 'b'], 5);
    const encoder = await SegmentationEncoder.create(model, { encoderPrefix: 'conv1.', imageSize: 64 });
    try {
      const references = [0, 1].map((k) =>
        [30, 31, 32].map((seed) => {
          const scene = generateScene(seed, { subjects: 2 });
          return { image: scene.image, mask: scene.subjects[k].mask };
        }),
      );
      const panels = [22, 23].map((seed) => {
        const scene = generateScene(seed, { subjects: 2 });
        return {
          image: scene.image,
          prompt: scene.caption,
          subjects: scene.subjects.map((s, k) => ({
            name: `${k}`,
            segment: s.mask,
            references: references[k],
          })),
        };
      });
      const cache = new ReferenceEmbeddingCache();
      const first = await evaluatePanel(panels[0], { clip, sas: encoder, cache });
      expect(clipImages).toBe(2 * 3 + 2 + 1); // the references once, then each crop and the whole image
      clipImages = 0;
      const second = await evaluatePanel(panels[1], { clip, sas: encoder, cache });
      expect(clipImages).toBe(2 + 1);
      expect(first).toEqual(await evaluatePanel(panels[0], { clip, sas: encoder }));
      expect(second).toEqual(await evaluatePanel(panels[1], { clip, sas: encoder }));
    } finally {
      await clip.release();
      await encoder.release();
    }
  });
});
