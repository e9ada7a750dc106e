import { afterAll, describe, expect, it } from 'vitest';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import {
  SegmentationJudge,
  classInRegion,
  judgeImage,
  mainColor,
  readRegion,
  silhouetteIoU,
  skeletonSilhouette,
  subjectPixels,
  type ClassMap,
  largestComponent,
} from './judge.js';
import { Graph } from '../onnx/graph.js';
import { imageToTensor, type RgbImage } from '../image/image.js';
import { Rng } from '../tensor/random.js';
import { generateScene } from '../world/scene.js';
import { SUBJECT_CLASSES, type WorldClassName } from '../world/classes.js';
import { COLORS } from '../world/palette.js';
import { degradeLikeGenerator } from './segmentation-stage.js';
import { tensorToImage } from '../image/image.js';
import { cleanupTempDirs, makeTempDir } from '../../test/helpers/random-model.js';

afterAll(cleanupTempDirs);

/**
 * A 'segmentation model' whose answer is known: red pixels are cats, blue pixels dogs, the rest
 * background (logits 0, 10 R - 2, 10 B - 2 on [-1, 1] values), trained size 32.
 */
function colourRuleModel(): Uint8Array {
  const g = new Graph({ name: 'colour_rule' });
  const image = g.input('image', [1, 3, 32, 32]);
  const w = g.initializer('w', Float32Array.from([0, 0, 0, 10, 0, 0, 0, 0, 10]), [3, 3, 1, 1]);
  const b = g.initializer('b', Float32Array.from([0, -2, -2]), [3]);
  g.output(g.op1('Conv', [image, w, b], { kernel_shape: [1, 1] }), 'logits');
  return g.toBytes({
    dynamicAxes: {
      image: { 0: 'batch', 2: 'height', 3: 'width' },
      logits: { 0: 'batch', 2: 'height', 3: 'width' },
    },
  });
}

/** A gray 64x64 picture with a red square (x 8..23, y 8..23) and a blue one (x 40..55, y 40..55). */
function twoSquares(): RgbImage {
  const data = new Uint8Array(64 * 64 * 3).fill(128);
  for (let y = 0; y < 64; y++)
    for (let x = 0; x < 64; x++) {
      const color =
        x >= 8 && x < 24 && y >= 8 && y < 24
          ? COLORS.red
          : x >= 40 && x < 56 && y >= 40 && y < 56
            ? COLORS.blue
            : null;
      if (color) data.set(color, 3 * (y * 64 + x));
    }
  return { width: 64, height: 64, data };
}

function box(x0: number, y0: number, x1: number, y1: number, size = 64): Uint8Array {
  const m = new Uint8Array(size * size);
  for (let y = y0; y <= y1; y++) for (let x = x0; x <= x1; x++) m[y * size + x] = 1;
  return m;
}

function mapOf(rows: string[], classes: readonly string[]): ClassMap {
  const width = rows[0].length;
  return {
    width,
    height: rows.length,
    classes,
    data: Uint8Array.from(rows.join(''), (c) => Number(c)),
  };
}

describe('the judge', () => {
  it('reads pictures of any size through a segmentation folder, as bytes or [-1, 1] values', async () => {
    const dir = join(await makeTempDir(), 'segmentation');
    await mkdir(dir, { recursive: true });
    await writeFile(join(dir, 'model.onnx'), colourRuleModel());
    await writeFile(join(dir, 'classes.json'), JSON.stringify({ classes: ['background', 'cat', 'dog'] }));
    await writeFile(join(dir, 'config.json'), JSON.stringify({ image_size: 32 }));
    const judge = await SegmentationJudge.load(dir);
    expect(judge.inputSize).toBe(32);
    const image = twoSquares();
    const map = await judgeImage(judge, image);
    expect([map.width, map.height, map.data.length]).toEqual([64, 64, 64 * 64]);
    expect(map.classes[map.data[16 * 64 + 16]]).toBe('cat');
    expect(map.classes[map.data[48 * 64 + 48]]).toBe('dog');
    expect(map.classes[map.data[2 * 64 + 60]]).toBe('background');
    const fromValues = await judgeImage(judge, { width: 64, height: 64, data: imageToTensor(image) });
    expect(fromValues.data).toEqual(map.data);

    // loose regions around each square: the background inside them does not count against them
    const catRegion = box(4, 4, 27, 27);
    expect(classInRegion(map, catRegion, 'cat')).toBe(true);
    expect(classInRegion(map, catRegion, 'dog')).toBe(false);
    expect(classInRegion(map, box(36, 36, 59, 59), 'dog')).toBe(true);
    expect(classInRegion(map, box(0, 40, 30, 63), 'cat')).toBe(false); // nothing there
    expect(mainColor(image, subjectPixels(map, catRegion, 'cat'))).toBe('red');
    expect(mainColor(image, subjectPixels(map, box(36, 36, 59, 59), null))).toBe('blue');
    await expect(judgeImage(judge, { width: 64, height: 64, data: new Float32Array(10) })).rejects.toThrow(
      /has 12288 values, not 10/,
    );
    await judge.release();
  });

  it('finds a class by the majority of the subject pixels in a region, given enough coverage', () => {
    const classes = ['background', 'cat', 'dog'];
    const map = mapOf(['1100', '1120', '0020', '0000'], classes);
    const all = new Uint8Array(16).fill(1);
    const r = readRegion(map, all);
    expect(r).toMatchObject({ area: 16, majorityClass: 'cat', counts: [10, 4, 2] });
    expect(r.coverage).toBeCloseTo(6 / 16, 6);
    expect(classInRegion(map, all, 'cat')).toBe(true);
    expect(classInRegion(map, all, 'dog')).toBe(false);
    // the right half: dogs 2, cats 0
    const right = Uint8Array.from({ length: 16 }, (_, p) => (p % 4 >= 2 ? 1 : 0));
    expect(classInRegion(map, right, 'dog')).toBe(true);
    // one dog pixel in 16 is 6% coverage: found at the default 5%, not when 10% is asked
    const sparse = mapOf(['0000', '0000', '0020', '0000'], classes);
    expect(classInRegion(sparse, all, 'dog')).toBe(true);
    expect(classInRegion(sparse, all, 'dog', { minCoverage: 0.1 })).toBe(false);
    // a tie goes to the class listed first
    expect(classInRegion(mapOf(['1200'], classes), new Uint8Array(4).fill(1), 'cat')).toBe(true);
    expect(classInRegion(map, new Uint8Array(16), 'cat')).toBe(false);
    expect(() => classInRegion(map, all, 'unicorn')).toThrow(/does not know the subject class 'unicorn'/);
    expect(() => classInRegion(map, new Uint8Array(3), 'cat')).toThrow(/3 pixels/);
  });

  it('names the main colour of world subjects as the world does (clean single-subject renders)', () => {
    const rng = new Rng(2024);
    let agree = 0;
    let agreeRough = 0;
    const misses: string[] = [];
    const n = 20 * SUBJECT_CLASSES.length;
    for (let i = 0; i < n; i++) {
      const scene = generateScene(rng, {
        size: 128,
        specs: [{ className: SUBJECT_CLASSES[i % SUBJECT_CLASSES.length] }],
      });
      const s = scene.subjects[0];
      const color = mainColor(scene.image, s.mask);
      if (color === s.color) agree++;
      else misses.push(`${s.className} ${s.color} -> ${color}`);
      const rough = degradeLikeGenerator(rng, imageToTensor(scene.image), 128);
      if (mainColor({ width: 128, height: 128, data: rough }, s.mask) === s.color) agreeRough++;
    }
    console.log(
      `mainColor vs world colour: ${((100 * agree) / n).toFixed(1)}% of ${n} clean renders, ` +
        `${((100 * agreeRough) / n).toFixed(1)}% degraded like a generator's output; misses: ${misses.join(', ')}`,
    );
    expect(agree / n).toBeGreaterThanOrEqual(0.95);
    expect(agreeRough / n).toBeGreaterThanOrEqual(0.85);

    // shading and an outline do not change the colour; nothing in the mask gives null
    const data = new Uint8Array(16 * 16 * 3);
    for (let y = 0; y < 16; y++)
      for (let x = 0; x < 16; x++) {
        const edge = x === 2 || x === 13 || y === 2 || y === 13;
        const c = edge ? [26, 24, 30] : x < 8 ? COLORS.green : COLORS.green.map((v) => v * 0.7);
        data.set(c, 3 * (y * 16 + x));
      }
    const square = { width: 16, height: 16, data };
    expect(mainColor(square, box(2, 2, 13, 13, 16))).toBe('green');
    expect(mainColor(square, new Uint8Array(256))).toBeNull();
    expect(mainColor({ width: 16, height: 16, data: imageToTensor(square) }, box(2, 2, 13, 13, 16))).toBe(
      'green',
    );
    expect(tensorToImage(imageToTensor(square), 16, 16).data).toEqual(data);
  });

  it('scores the world people against their own skeleton silhouette well above 0.5, and a misplaced one low', () => {
    const rng = new Rng(77);
    const people: WorldClassName[] = ['man', 'woman', 'boy', 'girl', 'robot'];
    const own: number[] = [];
    const shifted: number[] = [];
    for (let i = 0; i < 12 * people.length; i++) {
      const scene = generateScene(rng, { size: 128, specs: [{ className: people[i % people.length] }] });
      const person = scene.pose.people[0];
      own.push(silhouetteIoU(scene.subjects[0].mask, skeletonSilhouette(person, 128, 128)));
      const moved = {
        keypoints: person.keypoints.map((k) => (k ? { ...k, x: (k.x + 48) % 128 } : null)),
      };
      shifted.push(silhouetteIoU(scene.subjects[0].mask, skeletonSilhouette(moved, 128, 128)));
    }
    const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
    console.log(
      `world people vs their own skeleton silhouette: mean IoU ${mean(own).toFixed(3)} (lowest ${Math.min(...own).toFixed(3)}); ` +
        `moved 48 px: ${mean(shifted).toFixed(3)}`,
    );
    expect(mean(own)).toBeGreaterThan(0.65);
    expect(Math.min(...own)).toBeGreaterThan(0.5);
    expect(mean(shifted)).toBeLessThan(0.25);
    // a pose document on a larger canvas is scaled to the picture
    const scene = generateScene(new Rng(3), { size: 128, specs: [{ className: 'woman' }] });
    const big = {
      width: 512,
      height: 512,
      people: scene.pose.people.map((p) => ({
        keypoints: p.keypoints.map((k) => (k ? { ...k, x: 4 * k.x, y: 4 * k.y } : null)),
      })),
    };
    expect(
      silhouetteIoU(skeletonSilhouette(big, 128, 128), skeletonSilhouette(scene.pose.people[0], 128, 128)),
    ).toBeGreaterThan(0.9);
    expect(silhouetteIoU(new Uint8Array(4), new Uint8Array(4))).toBe(0);
    expect(() => silhouetteIoU(new Uint8Array(4), new Uint8Array(5))).toThrow(/differ in size/);
  });
});

describe('largestComponent', () => {
  const grid = (rows: string[]) => Uint8Array.from(rows.join('').split(''), (c) => (c === '#' ? 1 : 0));

  it('keeps the largest 8-connected part and drops the specks', () => {
    const mask = grid(['##...', '.#..#', '..#..', '.....', '#...#']);
    // the diagonal chain (0,0) (1,0) (1,1) (2,2) is one part of 4; the rest are single pixels
    expect(Array.from(largestComponent(mask, 5, 5))).toEqual(
      Array.from(grid(['##...', '.#...', '..#..', '.....', '.....'])),
    );
  });

  it('gives an empty mask for an empty one, keeps the first of equal parts, refuses a wrong size', () => {
    expect(Array.from(largestComponent(new Uint8Array(6), 3, 2))).toEqual([0, 0, 0, 0, 0, 0]);
    expect(Array.from(largestComponent(grid(['#.#']), 3, 1))).toEqual([1, 0, 0]);
    expect(() => largestComponent(new Uint8Array(5), 3, 2)).toThrow(/a 3x2 mask needs 6 values, got 5/);
  });
});
