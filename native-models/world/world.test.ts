import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { encodePng } from '../image/png.js';
import { KEYPOINT, KEYPOINT_COUNT } from '../pose/openpose.js';
import { Rng } from '../tensor/random.js';
import { Canvas } from './raster.js';
import {
  BACKGROUND_KINDS,
  BACKGROUND_VARIANTS,
  CAPTION_VOCABULARY,
  CLASS_INFO,
  COLORS,
  IDENTITY_SUBJECTS,
  SUBJECT_CLASSES,
  WORLD_CLASSES,
  classIndex,
  generateScene,
  isPerson,
  identityReferenceImages,
  orientedSkeleton,
  renderBackground,
  renderWorldGrid,
  sceneCaption,
  subjectPhrase,
} from './world.js';
import type { WorldScene } from './world.js';

/** FNV-1a over bytes, for comparing many images cheaply. */
function hash(bytes: Uint8Array): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < bytes.length; i++) h = Math.imul(h ^ bytes[i], 0x01000193);
  return h >>> 0;
}

function scenes(
  seed: number,
  count: number,
  options: Parameters<typeof generateScene>[1] = {},
): WorldScene[] {
  const rng = new Rng(seed);
  return Array.from({ length: count }, () => generateScene(rng, options));
}

describe('classes', () => {
  it('has stable indices with background at 0', () => {
    expect(WORLD_CLASSES[0]).toBe('background');
    expect(WORLD_CLASSES.length).toBe(14);
    expect(classIndex('man')).toBe(1);
    expect(classIndex('chair')).toBe(13);
    for (const c of SUBJECT_CLASSES) expect(WORLD_CLASSES[CLASS_INFO[c].index]).toBe(c);
  });

  it('counts the four people as persons, not the robot, animals or objects', () => {
    expect(SUBJECT_CLASSES.filter(isPerson)).toEqual(['man', 'woman', 'boy', 'girl']);
    expect(subjectPhrase({ className: 'girl', color: 'red', pose: 'waving' }, 'short')).toBe(
      'a cartoon girl in red waving',
    );
    expect(subjectPhrase({ className: 'robot', color: 'red', pose: 'waving' }, 'short')).not.toContain(
      'cartoon',
    );
  });
});

describe('generateScene', () => {
  it('is deterministic by seed and differs across seeds', () => {
    const a = generateScene(1234);
    const b = generateScene(1234);
    const c = generateScene(new Rng(1234));
    expect(b.caption).toBe(a.caption);
    expect(Buffer.from(b.image.data).equals(Buffer.from(a.image.data))).toBe(true);
    expect(Buffer.from(b.classMask).equals(Buffer.from(a.classMask))).toBe(true);
    expect(Buffer.from(b.instanceMask).equals(Buffer.from(a.instanceMask))).toBe(true);
    expect(Buffer.from(b.openpose.data).equals(Buffer.from(a.openpose.data))).toBe(true);
    b.subjects.forEach((s, i) =>
      expect(Buffer.from(s.mask).equals(Buffer.from(a.subjects[i].mask))).toBe(true),
    );
    expect(hash(c.image.data)).toBe(hash(a.image.data));
    const others = new Set(scenes(99, 20).map((s) => hash(s.image.data)));
    expect(others.size).toBe(20);
    expect(others.has(hash(a.image.data))).toBe(false);
  });

  it('renders every class with a non-empty mask of plausible size', () => {
    const S = 128;
    for (const className of SUBJECT_CLASSES) {
      const rng = new Rng(7 + classIndex(className));
      for (let k = 0; k < 8; k++) {
        const one = generateScene(rng, { specs: [{ className }] });
        const s = one.subjects[0];
        expect(s.className).toBe(className);
        expect(s.area, `${className} single`).toBeGreaterThan(0.03 * S * S);
        expect(s.area, `${className} single`).toBeLessThan(0.6 * S * S);
        const crowd = generateScene(rng, { specs: [{ className }, {}, {}, {}] });
        for (const t of crowd.subjects) expect(t.area, `${t.className} in a crowd`).toBeGreaterThan(25);
      }
    }
  });

  it('keeps class, instance and subject masks consistent', () => {
    for (const scene of scenes(5, 60)) {
      const S = scene.image.width;
      let covered = 0;
      let mismatches = 0;
      for (let o = 0; o < S * S; o++) {
        const inst = scene.instanceMask[o];
        let owners = 0;
        let owner = -1;
        scene.subjects.forEach((s, i) => {
          if (s.mask[o] === 1) {
            owners++;
            owner = i;
          }
        });
        if (inst === 0) {
          if (scene.classMask[o] !== 0 || owners !== 0) mismatches++;
        } else {
          covered++;
          if (
            owners !== 1 ||
            owner !== inst - 1 ||
            scene.classMask[o] !== scene.subjects[inst - 1].classIndex
          )
            mismatches++;
        }
      }
      expect(mismatches).toBe(0);
      expect(scene.subjects.reduce((n, s) => n + s.area, 0)).toBe(covered);
      for (const s of scene.subjects) expect(s.mask.reduce((n, v) => n + v, 0)).toBe(s.area);
    }
  });

  it('lets nearer subjects occlude farther ones (drawing order = ground line order)', () => {
    let overlapping = 0;
    for (const scene of scenes(17, 80, { subjects: 4 })) {
      const ys = scene.subjects.map((s) => s.placement.y);
      expect([...ys].sort((a, b) => a - b)).toEqual(ys);
      // a farther subject's unoccluded box can contain pixels now owned by a nearer one
      for (let i = 0; i < scene.subjects.length; i++) {
        const s = scene.subjects[i];
        const { x0, y0, x1, y1 } = s.bbox;
        for (let y = y0; y <= y1; y++) {
          for (let x = x0; x <= x1; x++) if (scene.instanceMask[y * 128 + x] > i + 1) overlapping++;
        }
      }
    }
    expect(overlapping).toBeGreaterThan(0);
  });

  it('puts visible keypoints inside the subject mask', () => {
    let inside = 0;
    let total = 0;
    let insideSingle = 0;
    let totalSingle = 0;
    for (const scene of [
      ...scenes(11, 150),
      ...scenes(12, 100, { subjects: 1, classes: ['man', 'woman', 'boy', 'girl', 'robot'] }),
    ]) {
      for (const s of scene.subjects) {
        expect(s.keypoints === null).toBe(!CLASS_INFO[s.className].humanLike);
        if (!s.keypoints) continue;
        expect(s.keypoints.length).toBe(KEYPOINT_COUNT);
        for (const k of s.keypoints) {
          if (!k.visible) continue;
          const x = Math.round(k.x);
          const y = Math.round(k.y);
          const hit = x >= 0 && y >= 0 && x < 128 && y < 128 && s.mask[y * 128 + x] === 1;
          total++;
          if (hit) inside++;
          if (scene.subjects.length === 1) {
            totalSingle++;
            if (hit) insideSingle++;
          }
        }
      }
    }
    console.log(
      `keypoints inside their mask: ${((100 * insideSingle) / totalSingle).toFixed(1)}% alone, ${((100 * inside) / total).toFixed(1)}% overall`,
    );
    expect(insideSingle / totalSingle).toBeGreaterThan(0.97);
    expect(inside / total).toBeGreaterThan(0.9);
  });

  it('renders the OpenPose image of human-like subjects only', () => {
    const animals = generateScene(3, { specs: [{ className: 'cat' }, { className: 'car' }] });
    expect(animals.pose.people.length).toBe(0);
    expect(animals.openpose.data.every((v) => v === 0)).toBe(true);
    const people = generateScene(3, {
      specs: [{ className: 'girl', pose: 'waving' }, { className: 'robot' }],
    });
    expect(people.pose.people.length).toBe(2);
    expect(people.openpose.data.some((v) => v > 0)).toBe(true);
  });

  it('mentions every subject with class and colour, using only the caption vocabulary', () => {
    const vocabulary = new Set(CAPTION_VOCABULARY);
    for (const scene of scenes(21, 300)) {
      const words = scene.caption.split(' ');
      for (const w of words) expect(vocabulary.has(w), `"${w}" in "${scene.caption}"`).toBe(true);
      for (const s of scene.subjects) {
        expect(words).toContain(s.className);
        expect(words).toContain(s.color);
        if (s.pose) expect(words).toContain(s.pose);
      }
      expect(scene.caption.endsWith(sceneCaption([], scene.background.kind).trim())).toBe(true);
    }
  });

  it('uses the templates from the brief', () => {
    expect(
      sceneCaption(
        [{ className: 'woman', color: 'yellow', style: 'comic', pose: 'waving', orientation: 'front' }],
        'beach',
      ),
    ).toBe('a cartoon woman in a yellow dress waving on a beach');
    expect(
      sceneCaption(
        [
          { className: 'man', color: 'red', pose: null },
          { className: 'cat', color: 'black', pose: null },
        ],
        'street',
      ),
    ).toBe('a cartoon man in red and a black cat on a street');
    expect(subjectPhrase({ className: 'car', color: 'orange' }, 'long')).toBe('an orange car');
  });

  it('respects fixed specs, pools and backgrounds', () => {
    const s = generateScene(8, {
      specs: [{ className: 'dog', color: 'white', pose: 'sitting', orientation: 'left' }],
      background: { kind: 'snow', variant: 5 },
    });
    expect(s.subjects[0]).toMatchObject({
      className: 'dog',
      color: 'white',
      pose: 'sitting',
      orientation: 'left',
    });
    expect(s.background).toEqual({ kind: 'snow', variant: 5 });
    expect(s.caption).toBe('a white dog sitting facing left in the snow');
    for (const scene of scenes(9, 40, {
      classes: ['mug', 'lamp'],
      colors: ['green'],
      backgrounds: ['kitchen'],
    })) {
      expect(scene.background.kind).toBe('kitchen');
      for (const t of scene.subjects) {
        expect(['mug', 'lamp']).toContain(t.className);
        expect(t.color).toBe('green');
      }
    }
    // cars, trees and houses stay outdoors
    for (const scene of scenes(10, 40, { classes: ['car', 'house'] })) {
      expect(['kitchen', 'bedroom', 'classroom']).not.toContain(scene.background.kind);
    }
    expect(() => generateScene(1, { subjects: 5 })).toThrow(RangeError);
    expect(() => generateScene(1, { specs: [{ className: 'cat', pose: 'waving' }] })).toThrow(
      /cannot be waving/,
    );
    expect(() => generateScene(1, { specs: [{ className: 'tree', orientation: 'left' }] })).toThrow(
      RangeError,
    );
    const away = generateScene(1, { specs: [{ className: 'dog', orientation: 'back', pose: 'standing' }] });
    expect(away.caption.startsWith('a ')).toBe(true);
    expect(away.caption).toContain('standing facing away');
  });

  it('is fast: 1000 scenes at 128x128', () => {
    const rng = new Rng(2024);
    for (let i = 0; i < 20; i++) generateScene(rng);
    const t0 = performance.now();
    for (let i = 0; i < 1000; i++) generateScene(rng);
    const ms = (performance.now() - t0) / 1000;
    console.log(`world: ${ms.toFixed(2)} ms per 128x128 scene (2x2 supersampled, 1-4 subjects)`);
    expect(ms).toBeLessThan(5);
  });
});

describe('skeleton orientations', () => {
  it('turns the figure around for the back view', () => {
    const front = orientedSkeleton('waving', 'front');
    const back = orientedSkeleton('waving', 'back');
    expect(front.points[KEYPOINT.right_wrist][0]).toBeLessThan(0);
    expect(back.points[KEYPOINT.right_wrist][0]).toBeGreaterThan(0);
    expect(back.visible[KEYPOINT.nose]).toBe(false);
    expect(back.visible[KEYPOINT.right_ear]).toBe(true);
  });

  it('hides the far arm and face side in side views and shows the stride', () => {
    const right = orientedSkeleton('walking', 'right');
    expect(right.visible[KEYPOINT.left_wrist]).toBe(false);
    expect(right.visible[KEYPOINT.left_eye]).toBe(false);
    expect(right.visible[KEYPOINT.right_wrist]).toBe(true);
    expect(right.visible[KEYPOINT.left_ankle]).toBe(true);
    expect(right.points[KEYPOINT.right_ankle][0]).toBeGreaterThan(0.08);
    const left = orientedSkeleton('walking', 'left');
    expect(left.visible[KEYPOINT.right_wrist]).toBe(false);
    expect(left.points[KEYPOINT.left_ankle][0]).toBeGreaterThan(0.08);
    // side views are narrow: shoulders nearly on top of each other
    expect(
      Math.abs(right.points[KEYPOINT.right_shoulder][0] - right.points[KEYPOINT.left_shoulder][0]),
    ).toBeLessThan(0.07);
  });

  it('draws side-view figures facing the named way', () => {
    const scene = generateScene(4, { specs: [{ className: 'man', pose: 'standing', orientation: 'right' }] });
    const k = scene.subjects[0].keypoints!;
    expect(k[KEYPOINT.nose].x).toBeGreaterThan(k[KEYPOINT.neck].x);
  });
});

describe('backgrounds', () => {
  it('has 8+ kinds with 100+ distinct variants each', () => {
    expect(BACKGROUND_KINDS.length).toBeGreaterThanOrEqual(8);
    let total = 0;
    for (const kind of BACKGROUND_KINDS) {
      const seen = new Set<number>();
      for (let v = 0; v < BACKGROUND_VARIANTS; v++) {
        const canvas = new Canvas(48, 1);
        const horizon = renderBackground(canvas, kind, v);
        expect(horizon).toBeGreaterThan(10);
        expect(horizon).toBeLessThan(40);
        seen.add(hash(canvas.finish([0, 0, 0], 1).rgb));
      }
      expect(seen.size, kind).toBeGreaterThanOrEqual(100);
      total += seen.size;
    }
    expect(total).toBeGreaterThanOrEqual(800);
  });

  it('is a pure function of kind and variant', () => {
    const a = new Canvas(64, 2);
    const b = new Canvas(64, 2);
    renderBackground(a, 'kitchen', 42);
    renderBackground(b, 'kitchen', 42);
    expect(hash(a.rgb)).toBe(hash(b.rgb));
  });
});

describe('identity set', () => {
  it('has 11 fully specified subjects across the categories', () => {
    expect(IDENTITY_SUBJECTS.length).toBe(11);
    const categories = IDENTITY_SUBJECTS.map((s) => s.category);
    for (const c of ['comic-male', 'comic-female', 'human-male', 'human-female'] as const)
      expect(categories).toContain(c);
    expect(categories.filter((c) => c === 'pet').length).toBeGreaterThanOrEqual(2);
    expect(categories.filter((c) => c === 'object').length).toBeGreaterThanOrEqual(3);
    expect(new Set(IDENTITY_SUBJECTS.map((s) => s.id)).size).toBe(11);
  });

  it('draws each identity consistently in 11 varied, deterministic reference images', () => {
    IDENTITY_SUBJECTS.forEach((identity, i) => {
      const refs = identityReferenceImages(i);
      expect(refs.length).toBe(11);
      const main = COLORS[identity.color];
      const views = new Set<string>();
      const backgrounds = new Set<string>();
      for (const scene of refs) {
        expect(scene.subjects.length).toBe(1);
        const s = scene.subjects[0];
        expect(s.className).toBe(identity.className);
        expect(s.color).toBe(identity.color);
        expect(s.attributes).toEqual(identity.attributes);
        views.add(`${s.pose}/${s.orientation}`);
        backgrounds.add(`${scene.background.kind}/${scene.background.variant}`);
        // the main colour is really there
        let exact = 0;
        for (let o = 0; o < s.mask.length; o++) {
          if (!s.mask[o]) continue;
          const d = scene.image.data;
          if (
            Math.abs(d[3 * o] - main[0]) +
              Math.abs(d[3 * o + 1] - main[1]) +
              Math.abs(d[3 * o + 2] - main[2]) <
            6
          )
            exact++;
        }
        expect(exact / s.area, `${identity.id} main colour share`).toBeGreaterThan(0.08);
      }
      expect(views.size).toBeGreaterThanOrEqual(identity.category === 'object' ? 1 : 8);
      expect(backgrounds.size).toBeGreaterThanOrEqual(8);
      const again = identityReferenceImages(i, { count: 2 });
      expect(hash(again[1].image.data)).toBe(hash(refs[1].image.data));
    });
  });
});

describe('renderWorldGrid', () => {
  it('tiles scenes into one image and writes a PNG to look at', async () => {
    const grid = renderWorldGrid(1, 4, 6);
    expect(grid.width).toBe(6 * 128 + 7 * 2);
    expect(grid.height).toBe(4 * 128 + 5 * 2);
    const dir = await mkdtemp(join(tmpdir(), 'tiny-world-'));
    const path = join(dir, 'world-grid.png');
    await writeFile(path, await encodePng(grid));
    console.log(`world grid: ${path}`);
  });
});
