import { describe, expect, it } from 'vitest';
import {
  AugmentError,
  CastAugmenter,
  cutOutCast,
  cutOutPreview,
  floodFillCutOut,
  renderWorldBackground,
  worldBackgroundSet,
  type CastSubject,
} from './augment.js';
import type { RgbImage } from '../image/image.js';
import { Rng } from '../tensor/random.js';
import { Graph } from '../onnx/graph.js';
import { SegmentationJudge } from '../tiny/judge.js';
import { BACKGROUND_KINDS } from '../world/backgrounds.js';

const RED = [220, 30, 30] as const;
const WHITE = [255, 255, 255] as const;

/** A `side x side` white picture with a red shape where `inside(x, y)`, and its mask. */
function picture(side: number, inside: (x: number, y: number) => boolean) {
  const data = new Uint8Array(side * side * 3);
  const mask = new Uint8Array(side * side);
  for (let y = 0; y < side; y++)
    for (let x = 0; x < side; x++) {
      const p = y * side + x;
      mask[p] = inside(x, y) ? 1 : 0;
      data.set(mask[p] ? RED : WHITE, 3 * p);
    }
  return { image: { width: side, height: side, data } as RgbImage, mask };
}

/** A red 20x20 square at (x, y) in a white 40x40 picture. */
function square(x = 10, y = 10) {
  return picture(40, (i, j) => i >= x && i < x + 20 && j >= y && j < y + 20);
}

function squareSubject(overrides: Partial<CastSubject> = {}): CastSubject {
  const refs = [square(10, 10), square(4, 12), square(16, 6)];
  return {
    identifier: 'sks',
    classNoun: 'cartoon man',
    images: refs.map((r) => r.image),
    masks: refs.map((r) => r.mask),
    ...overrides,
  };
}

function disc() {
  return picture(48, (x, y) => (x - 23.5) ** 2 + (y - 23.5) ** 2 <= 18 ** 2);
}

function bbox(mask: Uint8Array, S: number) {
  let x0 = S;
  let y0 = S;
  let x1 = -1;
  let y1 = -1;
  let area = 0;
  for (let p = 0; p < mask.length; p++) {
    if (!mask[p]) continue;
    const x = p % S;
    const y = (p - x) / S;
    area++;
    x0 = Math.min(x0, x);
    x1 = Math.max(x1, x);
    y0 = Math.min(y0, y);
    y1 = Math.max(y1, y);
  }
  return { x0, y0, x1, y1, area, width: x1 - x0 + 1, height: y1 - y0 + 1 };
}

function pixel(image: RgbImage, p: number): number[] {
  return [image.data[3 * p], image.data[3 * p + 1], image.data[3 * p + 2]];
}

const distance = (a: readonly number[], b: readonly number[]) =>
  Math.hypot(a[0] - b[0], a[1] - b[1], a[2] - b[2]);

describe('cut-outs', () => {
  it('keeps given masks and falls back to a flood fill that recovers a subject on a plain background', async () => {
    const given = await cutOutCast([squareSubject()]);
    expect(given[0].name).toBe('sks cartoon man');
    expect(given[0].cutOuts.map((c) => c.method)).toEqual(['mask', 'mask', 'mask']);
    expect(given[0].cutOuts[0].box).toEqual({ x0: 10, y0: 10, x1: 29, y1: 29 });
    expect(given[0].cutOuts[0].area).toBe(400);

    const subject = squareSubject();
    const cut = await cutOutCast([{ ...subject, masks: [subject.masks?.[0]] }]);
    expect(cut[0].cutOuts.map((c) => c.method)).toEqual(['mask', 'flood-fill', 'flood-fill']);
    expect(cut[0].cutOuts[1].mask).toEqual(subject.masks?.[1]);
    expect(cut[0].cutOuts[2].mask).toEqual(subject.masks?.[2]);
  });

  it('flood fill keeps holes the background cannot reach and the preview dims what was cut', () => {
    const ring = picture(32, (x, y) => {
      const r = Math.hypot(x - 15.5, y - 15.5);
      return r <= 12 && r >= 6;
    });
    const mask = floodFillCutOut(ring.image);
    const filled = picture(32, (x, y) => Math.hypot(x - 15.5, y - 15.5) <= 12).mask;
    expect(mask).toEqual(filled);
    const preview = cutOutPreview(ring.image, {
      index: 0,
      method: 'flood-fill',
      mask,
      box: { x0: 0, y0: 0, x1: 31, y1: 31 },
      area: 0,
    });
    expect(pixel(preview, 0)).toEqual([170, 170, 170]); // white dimmed: 255 / 3 + 85
    expect(pixel(preview, 16 * 32 + 5)).toEqual([...RED]); // on the ring: unchanged
  });

  it('uses the segmentation judge when one is given (non-background pixels)', async () => {
    // a 1x1-conv "segmentation model": subject logit R - G, background logit 0.5, so red is the subject
    const g = new Graph({ name: 'red_finder' });
    const image = g.input('image', [1, 3, 64, 64]);
    const w = g.initializer('head.weight', Float32Array.from([0, 0, 0, 1, -1, 0]), [2, 3, 1, 1]);
    const b = g.initializer('head.bias', Float32Array.from([0.5, 0]), [2]);
    g.output(g.op1('Conv', [image, w, b], { kernel_shape: [1, 1] }), 'logits');
    const judge = await SegmentationJudge.create(g.toBytes(), ['background', 'subject'], 64);
    try {
      const subject = squareSubject({ masks: undefined });
      const [prepared] = await cutOutCast([subject], { judge });
      expect(prepared.cutOuts.map((c) => c.method)).toEqual(['segmentation', 'segmentation', 'segmentation']);
      const truth = squareSubject().masks?.[0] as Uint8Array;
      const got = prepared.cutOuts[0].mask;
      let inter = 0;
      let union = 0;
      for (let p = 0; p < truth.length; p++) {
        inter += truth[p] & got[p];
        union += truth[p] | got[p];
      }
      expect(inter / union).toBeGreaterThan(0.9);
    } finally {
      await judge.release();
    }
  });

  it('rejects bad input with the subject and image index in the message', async () => {
    const subject = squareSubject();
    const images = subject.images;
    const masks = subject.masks as Uint8Array[];
    await expect(
      cutOutCast([{ ...subject, images: images.slice(0, 2), masks: masks.slice(0, 2) }]),
    ).rejects.toThrow("subject 'sks cartoon man' has 2 reference images; at least 3 are needed");
    await expect(
      cutOutCast([{ ...subject, masks: [masks[0], new Uint8Array(10), masks[2]] }]),
    ).rejects.toThrow("subject 'sks cartoon man', image 1: the mask has 10 pixels, the 40x40 image 1600");
    await expect(
      cutOutCast([{ ...subject, masks: [masks[0], masks[1], new Uint8Array(1600)] }]),
    ).rejects.toThrow("subject 'sks cartoon man', image 2: the mask is empty (no subject pixel)");
    await expect(
      cutOutCast([{ ...subject, name: 'Bob', masks: [masks[0].map((v) => v * 255), masks[1], masks[2]] }]),
    ).rejects.toThrow("subject 'Bob', image 0: mask values must be 0 or 1, found 255");
    const blank = { width: 40, height: 40, data: new Uint8Array(4800).fill(255) };
    await expect(
      cutOutCast([{ ...subject, images: [images[0], images[1], blank], masks: undefined }]),
    ).rejects.toThrow(
      "subject 'sks cartoon man', image 2: the flood-fill cut-out found no subject; give a mask for this image",
    );
    await expect(
      cutOutCast([
        { ...subject, images: [images[0], { width: 40, height: 40, data: new Uint8Array(5) }, images[2]] },
      ]),
    ).rejects.toThrow(AugmentError);
    await expect(cutOutCast([])).rejects.toThrow('the cast has no subjects');
  });
});

describe('world backgrounds', () => {
  it('chooses 100 distinct backgrounds, 10 of each kind, by seed', () => {
    const set = worldBackgroundSet();
    expect(set).toHaveLength(100);
    expect(new Set(set.map((b) => `${b.kind}/${b.variant}`)).size).toBe(100);
    for (const kind of BACKGROUND_KINDS) expect(set.filter((b) => b.kind === kind)).toHaveLength(10);
    expect(worldBackgroundSet(100, 0)).toEqual(set);
    expect(worldBackgroundSet(100, 1)).not.toEqual(set);
    expect(() => worldBackgroundSet(0)).toThrow(AugmentError);
  });
});

describe('augmented samples', () => {
  it('are a pure function of the seed', async () => {
    const augmenter = new CastAugmenter(await cutOutCast([squareSubject()]), { cropProbability: 0.5 });
    const a = augmenter.sample(new Rng(11), 0);
    const b = augmenter.sample(new Rng(11), 0);
    const c = augmenter.sample(new Rng(12), 0);
    expect(b.image.data).toEqual(a.image.data);
    expect(b.mask).toEqual(a.mask);
    expect(b.subjects).toEqual(a.subjects);
    expect(b.caption).toBe(a.caption);
    expect(c.image.data).not.toEqual(a.image.data);
  });

  it('move a square subject exactly: mask = the placed box, subject colour inside, the world background outside', async () => {
    const augmenter = new CastAugmenter(await cutOutCast([squareSubject()]), { cropProbability: 0 });
    for (let seed = 0; seed < 20; seed++) {
      const s = augmenter.sample(new Rng(seed), 0);
      const { box } = s.subjects[0];
      const measured = bbox(s.mask, 128);
      expect(measured).toMatchObject({ x0: box.x0, y0: box.y0, x1: box.x1, y1: box.y1 });
      expect(measured.area).toBe(measured.width * measured.height); // a solid rectangle
      expect(s.instanceMask).toEqual(s.mask);
      expect(s.background).not.toBeNull();
      const background = renderWorldBackground(s.background ?? { kind: 'park', variant: 0 }, 128);
      let wrong = 0;
      let differsFromReference = 0;
      for (let p = 0; p < 128 * 128; p++) {
        const expected = s.mask[p] ? RED : pixel(background, p);
        if (distance(pixel(s.image, p), expected) !== 0) wrong++;
        if (!s.mask[p] && distance(pixel(s.image, p), WHITE) > 10) differsFromReference++;
      }
      expect(wrong).toBe(0);
      // the reference's white background is gone: nearly every background pixel is the world's
      expect(differsFromReference / (128 * 128 - measured.area)).toBeGreaterThan(0.9);
    }
  });

  it('mask a round subject exactly where a pixel is at least half subject colour', async () => {
    const refs = [disc(), disc(), disc()];
    const cast = await cutOutCast([
      {
        identifier: 'zwx',
        classNoun: 'ball',
        images: refs.map((r) => r.image),
        masks: refs.map((r) => r.mask),
      },
    ]);
    const augmenter = new CastAugmenter(cast, { cropProbability: 0.5 });
    let ties = 0;
    let edge = 0;
    let wrong = 0;
    for (let seed = 0; seed < 10; seed++) {
      const s = augmenter.sample(new Rng(seed), 0);
      const background = s.background
        ? renderWorldBackground(s.background, 128)
        : { width: 128, height: 128, data: new Uint8Array(128 * 128 * 3).fill(255) };
      for (let p = 0; p < 128 * 128; p++) {
        const toRed = distance(pixel(s.image, p), RED);
        const toBackground = distance(pixel(s.image, p), pixel(background, p));
        if (toRed > 0 && toBackground > 0) edge++;
        if (Math.abs(toRed - toBackground) <= 2) ties++;
        else if (s.mask[p] !== (toRed < toBackground ? 1 : 0)) wrong++;
      }
    }
    expect(wrong).toBe(0);
    expect(edge).toBeGreaterThan(100); // the test looks at blended edge pixels, not only pure ones
    expect(ties).toBeLessThan(20);
  });

  it('zoom the subject box to 0.4-0.5 of the canvas side', async () => {
    const augmenter = new CastAugmenter(await cutOutCast([squareSubject()]), { cropProbability: 0 });
    const sides: number[] = [];
    for (let seed = 0; seed < 200; seed++) {
      const s = augmenter.sample(new Rng(seed), 0);
      const { width, height } = bbox(s.mask, 128);
      expect(width).toBe(height);
      sides.push(width / 128);
    }
    expect(Math.min(...sides)).toBeGreaterThanOrEqual(0.4 - 1 / 128);
    expect(Math.max(...sides)).toBeLessThanOrEqual(0.5 + 1 / 128);
    expect(Math.min(...sides)).toBeLessThan(0.42); // the whole range is used
    expect(Math.max(...sides)).toBeGreaterThan(0.48);
  });

  it('crop to 0.65-0.95 of the subject with probability 0.1', async () => {
    const subject = squareSubject();
    const augmenter = new CastAugmenter(await cutOutCast([subject]), { backgroundProbability: 0 });
    const rng = new Rng(5);
    const crops: number[] = [];
    const n = 2000;
    for (let i = 0; i < n; i++) {
      const s = augmenter.sample(rng, 0);
      const { crop } = s.subjects[0];
      if (crop === null) continue;
      crops.push(crop);
      if (crops.length <= 20) {
        // a window of the square is all subject: the mask is still the whole placed box
        const m = bbox(s.mask, 128);
        expect(m.area).toBe(m.width * m.height);
      }
    }
    const rate = crops.length / n;
    expect(rate).toBeGreaterThan(0.075); // binomial sd at n = 2000: 0.0067
    expect(rate).toBeLessThan(0.125);
    expect(Math.min(...crops)).toBeGreaterThanOrEqual(0.65);
    expect(Math.max(...crops)).toBeLessThanOrEqual(0.95);
  });

  it('caption the subject with the template and the background phrase', async () => {
    const cast = await cutOutCast([squareSubject()]);
    const merged = new CastAugmenter(cast).sample(new Rng(1), 0);
    expect(merged.caption).toMatch(/^a sks cartoon man (in|on) /);
    const plain = new CastAugmenter(cast, {
      backgroundProbability: 0,
      captionTemplate: 'a photo of {identifier} {class}',
    });
    const s = plain.sample(new Rng(1), 0);
    expect(s.caption).toBe('a photo of sks cartoon man');
    expect(s.background).toBeNull();
    expect(pixel(s.image, 0)).toEqual([...WHITE]);
    expect(() => new CastAugmenter(cast, { captionTemplate: 'a {class}' })).toThrow(
      'must contain {identifier}',
    );
    expect(() => new CastAugmenter(cast, { zoomRange: [0.5, 0.4] })).toThrow('zoomRange');
    expect(() => plain.sample(new Rng(1), 3)).toThrow('subject 3 is not in the cast of 1');
  });

  it('merge several subjects of a cast into one sample with instance masks', async () => {
    const cat = disc();
    const cast = await cutOutCast([
      squareSubject(),
      {
        identifier: 'zwx',
        classNoun: 'cat',
        images: [cat.image, cat.image, cat.image],
        masks: [cat.mask, cat.mask, cat.mask],
      },
    ]);
    const augmenter = new CastAugmenter(cast);
    for (let seed = 0; seed < 10; seed++) {
      const s = augmenter.composite(new Rng(seed), [0, 1]);
      expect(s.caption).toMatch(/^a sks cartoon man and a zwx cat (in|on) /);
      expect(s.subjects.map((x) => x.name)).toEqual(['sks cartoon man', 'zwx cat']);
      for (const [i, subject] of s.subjects.entries()) {
        const own = s.instanceMask.map((id) => (id === i + 1 ? 1 : 0));
        expect(own.reduce((a, b) => a + b, 0)).toBe(subject.area);
        expect(subject.area).toBeGreaterThan(100);
        const m = bbox(own, 128);
        expect(m.x0).toBeGreaterThanOrEqual(subject.box.x0);
        expect(m.x1).toBeLessThanOrEqual(subject.box.x1);
      }
      // slots: the first subject is on the left, the second on the right
      expect(s.subjects[0].box.x0).toBeLessThan(s.subjects[1].box.x0);
      expect(s.mask).toEqual(s.instanceMask.map((id) => (id > 0 ? 1 : 0)));
    }
  });
});
