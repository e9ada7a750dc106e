/**
 * Example scenes to start from (and for tests): a segment map with 1 to 4 subject regions over a
 * background, per-region prompts, optionally a scaffold color or image, a pose per person, and SAL.
 *
 * @example
 * await writeExampleScene('scenes/picnic', { subjects: 3, pose: true });
 * // then: msp render scenes/picnic/scene.json
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { encodePng } from '../image/png.js';
import { addPerson, emptyPose, toOpenPoseJson, type PoseDocument } from '../pose/openpose.js';
import type { GenerationRequestJson } from './request.js';

export interface ExampleSceneOptions {
  subjects: 1 | 2 | 3 | 4;
  width?: number;
  height?: number;
  /** 'color': a flat scaffold color; 'image': a scaffold image file. */
  scaffold?: 'color' | 'image';
  pose?: boolean;
  /** SAL weight (> 0 binds the subject regions to subject ids the segmentation model must know). */
  sal?: number;
  steps?: number;
  seed?: number;
}

/** Region colors: saturated and distinct, as the painter offers them. */
export const EXAMPLE_COLORS = ['#e6194b', '#3cb44b', '#4363d8', '#f58231'];
export const EXAMPLE_SUBJECTS = ['sks_cat', 'sks_dog', 'sks_man', 'sks_woman'];
const PROMPTS = [
  'sks cat sitting',
  'sks dog running',
  'sks man cartoon waving',
  'sks woman cartoon in a yellow dress',
];

/** Writes scene.json, segments.png and, as asked, pose.json and scaffold.png into `dir`. */
export async function writeExampleScene(dir: string, o: ExampleSceneOptions): Promise<string> {
  const width = o.width ?? 64;
  const height = o.height ?? 64;
  await mkdir(dir, { recursive: true });
  // 1. segment map: the subjects side by side in the lower two thirds, background elsewhere
  const data = new Uint8Array(width * height * 3); // black = background
  const slot = width / o.subjects;
  for (let y = Math.floor(height / 3); y < height; y++) {
    for (let x = 0; x < width; x++) {
      const j = Math.min(o.subjects - 1, Math.floor(x / slot));
      // leave a gutter between regions so that each region stays a separate shape
      if (x - j * slot < 2 || (j + 1) * slot - x <= 2) continue;
      const hex = EXAMPLE_COLORS[j];
      for (let c = 0; c < 3; c++)
        data[(y * width + x) * 3 + c] = parseInt(hex.slice(1 + 2 * c, 3 + 2 * c), 16);
    }
  }
  await writeFile(join(dir, 'segments.png'), await encodePng({ width, height, data }));

  // 2. the request
  const request: GenerationRequestJson = {
    version: 1,
    prompt: `${o.subjects === 1 ? 'a friend' : `${o.subjects} friends`} at a picnic, comic style`,
    negativePrompt: 'blurry',
    segmentMap: 'segments.png',
    backgroundColor: '#000000',
    backgroundPrompt: 'a park with trees',
    segments: Array.from({ length: o.subjects }, (_, j) => ({
      color: EXAMPLE_COLORS[j],
      prompt: PROMPTS[j],
      ...(o.sal ? { subject: EXAMPLE_SUBJECTS[j] } : {}),
    })),
    steps: o.steps ?? 6,
    scheduler: 'ddim',
    guidanceScale: 7.5,
    scaffoldingSteps: o.scaffold ? 2 : 0,
    globalDiffuserSteps: 1,
    globalDiffuserWeight: 1,
    controlnetScale: 1,
    sal: { weight: o.sal ?? 0 },
    seed: o.seed ?? 42,
    width,
    height,
  };
  if (o.scaffold === 'color') request.scaffolding = { color: '#808080' };
  if (o.scaffold === 'image') {
    const scaffold = new Uint8Array(width * height * 3);
    for (let y = 0; y < height; y++) {
      for (let x = 0; x < width; x++) {
        const sky = y < height / 3;
        scaffold.set(sky ? [120, 170, 230] : [90, 160, 80], (y * width + x) * 3);
      }
    }
    await writeFile(join(dir, 'scaffold.png'), await encodePng({ width, height, data: scaffold }));
    request.scaffolding = { image: 'scaffold.png' };
  }
  if (o.pose) {
    let pose: PoseDocument = emptyPose(width, height);
    for (let j = 0; j < o.subjects; j++) {
      pose = addPerson(pose, j % 2 === 0 ? 'standing' : 'waving', {
        x: (j + 0.5) * slot,
        y: height * 0.95,
        scale: height * 0.6,
      });
    }
    await writeFile(join(dir, 'pose.json'), JSON.stringify(toOpenPoseJson(pose), null, 2) + '\n');
    request.pose = 'pose.json';
  }
  const path = join(dir, 'scene.json');
  await writeFile(path, JSON.stringify(request, null, 2) + '\n');
  return path;
}
