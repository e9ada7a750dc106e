/**
 * Contact sheets of generated scenes, for looking at the world (pure; write the result with `encodePng`).
 *
 * @example
 * ```ts
 * const sheet = renderWorldGrid(1, 4, 6); // 4 rows x 6 columns of 128 px scenes
 * await writeFile('grid.png', await encodePng(sheet));
 * ```
 */
import type { RgbImage } from '../image/image.js';
import { Rng } from '../tensor/random.js';
import { generateScene } from './scene.js';
import type { GenerateSceneOptions, WorldScene } from './scene.js';

/** Options of {@link renderWorldGrid}. */
export interface WorldGridOptions extends GenerateSceneOptions {
  /** Gap between cells in pixels (default 2). */
  gap?: number;
  /** Which layer to show per cell (default `image`). */
  layer?: 'image' | 'openpose' | 'classMask';
}

/**
 * Tiles `images` (all the same size) into one image, row-major, with a light gray gap.
 *
 * @example
 * ```ts
 * const sheet = tileImages([a, b, c, d], 2); // 2 x 2
 * ```
 */
export function tileImages(images: readonly RgbImage[], cols: number, gap = 2): RgbImage {
  if (images.length === 0) throw new RangeError('tileImages needs at least one image');
  const w = images[0].width;
  const h = images[0].height;
  const rows = Math.ceil(images.length / cols);
  const W = cols * w + (cols + 1) * gap;
  const H = rows * h + (rows + 1) * gap;
  const data = new Uint8Array(W * H * 3).fill(220);
  images.forEach((img, k) => {
    if (img.width !== w || img.height !== h)
      throw new RangeError('tileImages: all images must have the same size');
    const ox = gap + (k % cols) * (w + gap);
    const oy = gap + Math.floor(k / cols) * (h + gap);
    for (let y = 0; y < h; y++) {
      data.set(img.data.subarray(y * w * 3, (y + 1) * w * 3), ((oy + y) * W + ox) * 3);
    }
  });
  return { width: W, height: H, data };
}

/** A colour per world class, for showing class masks. */
const CLASS_COLORS: readonly (readonly [number, number, number])[] = [
  [0, 0, 0],
  [230, 25, 75],
  [60, 180, 75],
  [255, 225, 25],
  [0, 130, 200],
  [245, 130, 48],
  [145, 30, 180],
  [70, 240, 240],
  [240, 50, 230],
  [210, 245, 60],
  [250, 190, 212],
  [0, 128, 128],
  [220, 190, 255],
  [170, 110, 40],
];

/**
 * A class mask as a colour image (one fixed colour per class, background black).
 *
 * @example
 * ```ts
 * const view = classMaskImage(scene.classMask, 128);
 * ```
 */
export function classMaskImage(mask: Uint8Array, size: number): RgbImage {
  const data = new Uint8Array(size * size * 3);
  for (let o = 0; o < size * size; o++) {
    const c = CLASS_COLORS[mask[o] % CLASS_COLORS.length];
    data[3 * o] = c[0];
    data[3 * o + 1] = c[1];
    data[3 * o + 2] = c[2];
  }
  return { width: size, height: size, data };
}

/**
 * Renders `rows * cols` scenes from one generator seeded with `seed` and tiles them.
 *
 * @example
 * ```ts
 * const sheet = renderWorldGrid(7, 3, 3, { subjects: 1 });
 * ```
 */
export function renderWorldGrid(
  seed: number,
  rows: number,
  cols: number,
  options: WorldGridOptions = {},
): RgbImage {
  const rng = new Rng(seed);
  const scenes: WorldScene[] = [];
  for (let i = 0; i < rows * cols; i++) scenes.push(generateScene(rng, options));
  return tileImages(
    scenes.map((s) => sceneLayer(s, options.layer ?? 'image')),
    cols,
    options.gap ?? 2,
  );
}

/**
 * One layer of a scene as an RGB image.
 *
 * @example
 * ```ts
 * sceneLayer(scene, 'classMask');
 * ```
 */
export function sceneLayer(scene: WorldScene, layer: 'image' | 'openpose' | 'classMask'): RgbImage {
  if (layer === 'openpose') return scene.openpose;
  if (layer === 'classMask') return classMaskImage(scene.classMask, scene.image.width);
  return scene.image;
}
