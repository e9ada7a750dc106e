import { describe, expect, it } from 'vitest';
import {
  BODY25_TO_COCO18,
  KEYPOINT,
  KEYPOINT_COUNT,
  KEYPOINT_NAMES,
  LIMBS,
  LIMB_DRAW_COLORS,
  MIRRORED_KEYPOINT,
  OPENPOSE_COLORS,
  OpenPoseFormatError,
  POSE_TEMPLATES,
  POSE_TEMPLATE_NAMES,
  addPerson,
  applyTemplate,
  emptyPose,
  fitPlacement,
  isPoseDocument,
  mirrorPerson,
  moveKeypoint,
  openPoseImageWarning,
  parseOpenPoseJson,
  personBounds,
  personFromTemplate,
  poseSilhouette,
  removePerson,
  renderOpenPose,
  scalePerson,
  setKeypointVisible,
  toOpenPoseJson,
  translatePerson,
} from './openpose.js';
import type { Keypoint, PoseDocument, PoseRaster, RgbColor } from './openpose.js';

function deepFreeze<T>(value: T): T {
  if (typeof value === 'object' && value !== null && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const v of Object.values(value)) deepFreeze(v);
  }
  return value;
}

function pixel(img: PoseRaster, x: number, y: number): number[] {
  const o = 3 * (Math.round(y) * img.width + Math.round(x));
  return [img.data[o], img.data[o + 1], img.data[o + 2]];
}

function colorsIn(img: PoseRaster): Set<string> {
  const seen = new Set<string>();
  for (let o = 0; o < img.data.length; o += 3)
    seen.add(`${img.data[o]},${img.data[o + 1]},${img.data[o + 2]}`);
  return seen;
}

const key = (c: RgbColor | number[]): string => c.join(',');

/** One standing person, 56 px tall, feet at the bottom centre of a 64 x 64 canvas. */
function standing64(): PoseDocument {
  return addPerson(emptyPose(64, 64), 'standing', { x: 32, y: 60, scale: 56 });
}

function distanceToSegment(px: number, py: number, a: Keypoint, b: Keypoint): number {
  if (!a || !b) return Infinity;
  const vx = b.x - a.x;
  const vy = b.y - a.y;
  const t = Math.min(1, Math.max(0, ((px - a.x) * vx + (py - a.y) * vy) / (vx * vx + vy * vy)));
  return Math.hypot(px - (a.x + t * vx), py - (a.y + t * vy));
}

describe('standard tables', () => {
  it('pins the COCO-18 keypoint order', () => {
    expect(KEYPOINT_NAMES).toEqual([
      'nose',
      'neck',
      'right_shoulder',
      'right_elbow',
      'right_wrist',
      'left_shoulder',
      'left_elbow',
      'left_wrist',
      'right_hip',
      'right_knee',
      'right_ankle',
      'left_hip',
      'left_knee',
      'left_ankle',
      'right_eye',
      'left_eye',
      'right_ear',
      'left_ear',
    ]);
    expect(KEYPOINT.right_elbow).toBe(3);
    expect(KEYPOINT.left_ear).toBe(17);
  });

  it('pins the limb sequence (the annotator limbSeq, 0-based)', () => {
    // prettier-ignore
    const annotatorLimbSeq = [
      [2, 3], [2, 6], [3, 4], [4, 5], [6, 7], [7, 8], [2, 9], [9, 10],
      [10, 11], [2, 12], [12, 13], [13, 14], [2, 1], [1, 15], [15, 17], [1, 16], [16, 18],
    ];
    expect(LIMBS).toEqual(annotatorLimbSeq.map(([a, b]) => [a - 1, b - 1]));
    expect(LIMBS.map(([a, b]) => `${KEYPOINT_NAMES[a]}-${KEYPOINT_NAMES[b]}`)).toEqual([
      'neck-right_shoulder',
      'neck-left_shoulder',
      'right_shoulder-right_elbow',
      'right_elbow-right_wrist',
      'left_shoulder-left_elbow',
      'left_elbow-left_wrist',
      'neck-right_hip',
      'right_hip-right_knee',
      'right_knee-right_ankle',
      'neck-left_hip',
      'left_hip-left_knee',
      'left_knee-left_ankle',
      'neck-nose',
      'nose-right_eye',
      'right_eye-right_ear',
      'nose-left_eye',
      'left_eye-left_ear',
    ]);
  });

  it('pins the 18 standard colours and the 60% limb colours', () => {
    // prettier-ignore
    expect(OPENPOSE_COLORS).toEqual([
      [255, 0, 0], [255, 85, 0], [255, 170, 0], [255, 255, 0], [170, 255, 0], [85, 255, 0],
      [0, 255, 0], [0, 255, 85], [0, 255, 170], [0, 255, 255], [0, 170, 255], [0, 85, 255],
      [0, 0, 255], [85, 0, 255], [170, 0, 255], [255, 0, 255], [255, 0, 170], [255, 0, 85],
    ]);
    expect(LIMB_DRAW_COLORS).toHaveLength(17);
    expect(LIMB_DRAW_COLORS[0]).toEqual([153, 0, 0]);
    expect(LIMB_DRAW_COLORS[1]).toEqual([153, 51, 0]);
    expect(LIMB_DRAW_COLORS[2]).toEqual([153, 102, 0]);
    LIMB_DRAW_COLORS.forEach((c, i) => expect(c).toEqual(OPENPOSE_COLORS[i].map((v) => Math.floor(v * 0.6))));
  });

  it('mirrors right and left keypoints by name', () => {
    MIRRORED_KEYPOINT.forEach((m, j) => {
      expect(MIRRORED_KEYPOINT[m]).toBe(j);
      const swapped = KEYPOINT_NAMES[j].replace(/^right_|^left_/, (s) =>
        s === 'right_' ? 'left_' : 'right_',
      );
      expect(KEYPOINT_NAMES[m]).toBe(swapped);
    });
  });

  it('maps BODY_25 to COCO-18 by name', () => {
    // prettier-ignore
    const body25 = [
      'Nose', 'Neck', 'RShoulder', 'RElbow', 'RWrist', 'LShoulder', 'LElbow', 'LWrist', 'MidHip', 'RHip',
      'RKnee', 'RAnkle', 'LHip', 'LKnee', 'LAnkle', 'REye', 'LEye', 'REar', 'LEar', 'LBigToe', 'LSmallToe',
      'LHeel', 'RBigToe', 'RSmallToe', 'RHeel',
    ];
    const normalize = (n: string): string =>
      n
        .replace(/^R(?=[A-Z])/, 'right_')
        .replace(/^L(?=[A-Z])/, 'left_')
        .toLowerCase();
    expect(BODY25_TO_COCO18.map((b) => normalize(body25[b]))).toEqual([...KEYPOINT_NAMES]);
  });

  it('freezes the shared tables and templates', () => {
    expect(Object.isFrozen(OPENPOSE_COLORS[3])).toBe(true);
    expect(Object.isFrozen(POSE_TEMPLATES.standing[0])).toBe(true);
    expect(Object.isFrozen(LIMBS[0])).toBe(true);
  });
});

describe('renderOpenPose', () => {
  it('draws a standing person in the limb colours on black at 64x64', () => {
    const doc = standing64();
    const img = renderOpenPose(doc, 64, 64);
    expect(img.width).toBe(64);
    expect(img.data).toHaveLength(64 * 64 * 3);
    const kps = doc.people[0].keypoints;

    // body limbs (long enough at this size to have a midpoint away from the keypoint circles)
    for (let i = 0; i <= 12; i++) {
      const [a, b] = LIMBS[i].map((j) => kps[j]!);
      expect(pixel(img, (a.x + b.x) / 2, (a.y + b.y) / 2), `limb ${i}`).toEqual([...LIMB_DRAW_COLORS[i]]);
    }
    for (const j of [1, 3, 4, 9, 10, 12, 13])
      expect(pixel(img, kps[j]!.x, kps[j]!.y)).toEqual([...OPENPOSE_COLORS[j]]);

    const palette = new Set(['0,0,0', ...LIMB_DRAW_COLORS.map(key), ...OPENPOSE_COLORS.map(key)]);
    for (const c of colorsIn(img)) expect(palette.has(c), c).toBe(true);

    // black everywhere further than a limb's half width (1 px) + rounding from the skeleton
    let checked = 0;
    for (let y = 0; y < 64; y++) {
      for (let x = 0; x < 64; x++) {
        const d = Math.min(...LIMBS.map(([a, b]) => distanceToSegment(x, y, kps[a], kps[b])));
        if (d > 1.5) {
          checked++;
          expect(pixel(img, x, y)).toEqual([0, 0, 0]);
        }
      }
    }
    expect(checked).toBeGreaterThan(64 * 64 * 0.8);
  });

  it('scales the default thickness like the reference: 9 px limbs and 9 px dots at 512', () => {
    const doc: PoseDocument = {
      width: 512,
      height: 512,
      people: [
        { keypoints: KEYPOINT_NAMES.map((_, j) => (j === 1 ? { x: 100, y: 200, confidence: 1 } : null)) },
      ],
    };
    const shoulder = moveKeypoint(doc, 0, KEYPOINT.right_shoulder, 300, 200);
    const img = renderOpenPose(shoulder, 512, 512);
    const column = (x: number): number[] => [...Array(512).keys()].filter((y) => pixel(img, x, y)[0] !== 0);
    expect(column(200)).toEqual([196, 197, 198, 199, 200, 201, 202, 203, 204]);
    expect(pixel(img, 200, 200)).toEqual([...LIMB_DRAW_COLORS[0]]);
    expect(column(100)).toHaveLength(9);
    expect(pixel(img, 100, 200)).toEqual([...OPENPOSE_COLORS[1]]);
    // the same pose rendered at 1024 (document scaled) has twice the thickness
    const big = renderOpenPose(shoulder, 1024, 1024);
    const bigColumn = [...Array(1024).keys()].filter((y) => pixel(big, 400, y)[0] !== 0);
    expect(bigColumn).toHaveLength(17);
  });

  it('does not draw a hidden elbow or its two limbs', () => {
    const doc = setKeypointVisible(standing64(), 0, KEYPOINT.right_elbow, false);
    expect(doc.people[0].keypoints[3]).toBeNull();
    const colors = colorsIn(renderOpenPose(doc, 64, 64));
    expect(colors.has(key(LIMB_DRAW_COLORS[2]))).toBe(false); // right shoulder - right elbow
    expect(colors.has(key(LIMB_DRAW_COLORS[3]))).toBe(false); // right elbow - right wrist
    expect(colors.has(key(OPENPOSE_COLORS[3]))).toBe(false); // the elbow dot
    for (const i of [0, 1, 4, 5, 6, 7, 8])
      expect(colors.has(key(LIMB_DRAW_COLORS[i])), `limb ${i}`).toBe(true);
    expect(colors.has(key(OPENPOSE_COLORS[4]))).toBe(true); // the wrist is still drawn
  });

  it('is deterministic and leaves an empty document black', () => {
    const doc = addPerson(standing64(), 'running', { x: 20, y: 62, scale: 40 });
    expect(renderOpenPose(doc, 96, 80).data).toEqual(renderOpenPose(doc, 96, 80).data);
    expect(renderOpenPose(emptyPose(64, 64), 32, 32).data.every((v) => v === 0)).toBe(true);
  });

  it('clips people that are partly off the canvas', () => {
    const doc = translatePerson(standing64(), 0, -40, 20);
    const img = renderOpenPose(doc, 64, 64, { lineWidth: 4, radius: 3 });
    expect(img.data).toHaveLength(64 * 64 * 3);
    expect(img.data.some((v) => v !== 0)).toBe(true);
  });

  it('rejects bad sizes and options', () => {
    expect(() => renderOpenPose(standing64(), 0, 64)).toThrow(
      /render size must be positive integers, got 0x64/,
    );
    expect(() => renderOpenPose(standing64(), 64, 64, { lineWidth: -1 })).toThrow(
      /lineWidth must be a positive/,
    );
  });
});

describe('mirrorPerson', () => {
  it('reflects positions and swaps sides so colours stay anatomically right', () => {
    const doc = deepFreeze(addPerson(emptyPose(200, 200), 'waving', { x: 80, y: 190, scale: 160 }));
    const before = doc.people[0].keypoints;
    const box = personBounds(doc.people[0])!;
    const axis2 = box.minX + box.maxX;
    const after = mirrorPerson(doc, 0).people[0].keypoints;

    // keypoint 2 (right shoulder) sits at the mirror image of where the left shoulder was
    expect(after[2]!.x).toBeCloseTo(axis2 - before[5]!.x, 9);
    expect(after[2]!.y).toBeCloseTo(before[5]!.y, 9);
    after.forEach((k, j) => {
      const source = before[MIRRORED_KEYPOINT[j]]!;
      expect(k!.x).toBeCloseTo(axis2 - source.x, 9);
      expect(k!.y).toBe(source.y);
    });
    // front view is kept: the right shoulder is still on the viewer's left of the left shoulder
    expect(after[2]!.x).toBeLessThan(after[5]!.x);
    // the raised hand (right wrist, above the head) is now the left wrist, on the other side of the image
    expect(after[KEYPOINT.left_wrist]!.y).toBe(before[KEYPOINT.right_wrist]!.y);
    expect(after[KEYPOINT.left_wrist]!.x).toBeGreaterThan(after[KEYPOINT.nose]!.x);
    expect(before[KEYPOINT.right_wrist]!.x).toBeLessThan(before[KEYPOINT.nose]!.x);

    // and it is drawn that way: colour 2 at the mirrored left-shoulder position, colour 7 up at the raised hand
    const img = renderOpenPose(mirrorPerson(doc, 0), 200, 200);
    expect(pixel(img, axis2 - before[5]!.x, before[5]!.y)).toEqual([...OPENPOSE_COLORS[2]]);
    expect(pixel(img, after[7]!.x, after[7]!.y)).toEqual([...OPENPOSE_COLORS[7]]);
  });

  it('is an involution, leaves a symmetric pose unchanged and can skip the swap', () => {
    const doc = deepFreeze(standing64());
    const twice = mirrorPerson(mirrorPerson(doc, 0), 0);
    twice.people[0].keypoints.forEach((k, j) => {
      expect(k!.x).toBeCloseTo(doc.people[0].keypoints[j]!.x, 9);
    });
    expect(renderOpenPose(mirrorPerson(doc, 0), 64, 64).data).toEqual(renderOpenPose(doc, 64, 64).data);
    const turned = mirrorPerson(doc, 0, { swapSides: false }).people[0].keypoints;
    expect(turned[2]!.x).toBeCloseTo(doc.people[0].keypoints[5]!.x, 9); // back view: right shoulder on the right
  });
});

describe('OpenPose JSON', () => {
  const twoPeople = (): PoseDocument => {
    let doc = addPerson(emptyPose(640, 480), 'walking', { x: 200.25, y: 450, scale: 300 });
    doc = addPerson(doc, 'sitting', { x: 470, y: 440.5, scale: 310 });
    doc = setKeypointVisible(doc, 1, KEYPOINT.left_ear, false);
    const kps = doc.people[0].keypoints.map((k, j) => (k && j === 4 ? { ...k, confidence: 0.42 } : k));
    return { ...doc, people: [{ keypoints: kps }, doc.people[1]] };
  };

  it('round-trips through toOpenPoseJson and JSON text', () => {
    const doc = twoPeople();
    const json = toOpenPoseJson(doc);
    expect(json.canvas_width).toBe(640);
    expect(json.people[0].pose_keypoints_2d).toHaveLength(54);
    expect(json.people[1].pose_keypoints_2d.slice(51)).toEqual([0, 0, 0]);
    expect(parseOpenPoseJson(json)).toEqual(doc);
    expect(parseOpenPoseJson(JSON.stringify(json))).toEqual(doc);
    expect(parseOpenPoseJson(JSON.parse(JSON.stringify(json)))).toEqual(doc);
  });

  it('reads plain OpenPose output with the image size passed in', () => {
    const values = toOpenPoseJson(twoPeople()).people[0].pose_keypoints_2d;
    const doc = parseOpenPoseJson(
      { version: 1.3, people: [{ pose_keypoints_2d: values, face_keypoints_2d: [] }] },
      {
        width: 640,
        height: 480,
      },
    );
    expect(doc.people[0]).toEqual(twoPeople().people[0]);
    expect(() => parseOpenPoseJson({ people: [{ pose_keypoints_2d: values }] })).toThrow(
      /no canvas_width\/canvas_height; pass \{ width, height \}/,
    );
  });

  it('rescales pixel coordinates from canvas_width/height to the requested size', () => {
    const json = toOpenPoseJson(twoPeople());
    const doc = parseOpenPoseJson(json, { width: 320, height: 240 });
    expect(doc.width).toBe(320);
    expect(doc.people[0].keypoints[1]!.x).toBeCloseTo(twoPeople().people[0].keypoints[1]!.x / 2, 9);
  });

  it('maps BODY_25 to COCO-18, dropping MidHip and the feet', () => {
    const body25: number[] = [];
    for (let b = 0; b < 25; b++) body25.push(10 + b, 100 + b, b === 17 ? 0 : 0.9);
    const doc = parseOpenPoseJson({ people: [{ pose_keypoints_2d: body25 }] }, { width: 300, height: 300 });
    const kps = doc.people[0].keypoints;
    expect(kps).toHaveLength(KEYPOINT_COUNT);
    expect(kps[KEYPOINT.right_wrist]).toEqual({ x: 14, y: 104, confidence: 0.9 });
    expect(kps[KEYPOINT.right_hip]).toEqual({ x: 19, y: 109, confidence: 0.9 }); // BODY_25 9 (8 is MidHip)
    expect(kps[KEYPOINT.left_ankle]).toEqual({ x: 24, y: 114, confidence: 0.9 });
    expect(kps[KEYPOINT.right_ear]).toBeNull(); // BODY_25 17, confidence 0
    expect(kps[KEYPOINT.left_ear]).toEqual({ x: 28, y: 118, confidence: 0.9 });
  });

  it('detects normalized coordinates (ControlNet export with canvas size, or size passed in)', () => {
    const doc = twoPeople();
    const normalized = {
      people: doc.people.map((p) => ({
        pose_keypoints_2d: p.keypoints.flatMap((k) => (k ? [k.x / 640, k.y / 480, 1] : [0, 0, 0])),
      })),
      canvas_width: 640,
      canvas_height: 480,
    };
    const parsed = parseOpenPoseJson(normalized);
    parsed.people.forEach((p, i) =>
      p.keypoints.forEach((k, j) => {
        const want = doc.people[i].keypoints[j];
        if (!want) return expect(k).toBeNull();
        expect(k!.x).toBeCloseTo(want.x, 9);
        expect(k!.y).toBeCloseTo(want.y, 9);
      }),
    );
    const { canvas_width: _w, canvas_height: _h, ...bare } = normalized;
    const resized = parseOpenPoseJson(bare, { width: 64, height: 48 });
    expect(resized.people[0].keypoints[1]!.x).toBeCloseTo(doc.people[0].keypoints[1]!.x / 10, 9);
    // forcing pixels keeps the raw numbers
    expect(
      parseOpenPoseJson(normalized, { normalized: false }).people[0].keypoints[1]!.x,
    ).toBeLessThanOrEqual(1);
  });

  it('names the person and the problem in errors', () => {
    const good = toOpenPoseJson(standing64()).people[0].pose_keypoints_2d;
    const withPeople = (...people: unknown[]): unknown => ({ people, canvas_width: 64, canvas_height: 64 });
    const err = (json: unknown): string => {
      try {
        parseOpenPoseJson(json);
      } catch (e) {
        expect(e).toBeInstanceOf(OpenPoseFormatError);
        return (e as Error).message;
      }
      throw new Error('expected an error');
    };
    expect(err(withPeople({ pose_keypoints_2d: good }, { pose_keypoints_2d: good.slice(0, 51) }))).toBe(
      'person 1: pose_keypoints_2d has 51 numbers; expected 54 (18 COCO keypoints) or 75 (25 BODY_25 keypoints)',
    );
    const nan = [...good];
    nan[10] = Number.NaN;
    expect(err(withPeople({ pose_keypoints_2d: nan }))).toBe(
      'person 0: right_elbow y (pose_keypoints_2d[10]) is NaN; expected a finite number',
    );
    const nulls = [...good] as unknown[];
    nulls[0] = null;
    expect(err(withPeople({ pose_keypoints_2d: nulls }))).toMatch(/person 0: nose x .* is null/);
    const text = [...good] as unknown[];
    text[53] = '1';
    expect(err(withPeople({ pose_keypoints_2d: text }))).toMatch(
      /person 0: left_ear confidence .* is string/,
    );
    expect(err(withPeople({ pose_keypoints_2d: good }, { face_keypoints_2d: [] }))).toMatch(
      /person 1: pose_keypoints_2d is missing/,
    );
    expect(err(withPeople(42))).toMatch(/person 0 is not an object/);
    expect(err({ bodies: [] })).toMatch(/no "people" array/);
    expect(err([])).toMatch(/must be an object/);
    expect(err('{"people": [')).toMatch(/not valid JSON/);
    expect(err({ people: [], canvas_width: -5, canvas_height: 10 })).toBe(
      'canvas_width must be a positive number, got -5',
    );
  });

  it('accepts the legacy pose_keypoints key and an empty people list', () => {
    const good = toOpenPoseJson(standing64()).people[0].pose_keypoints_2d;
    expect(parseOpenPoseJson({ people: [{ pose_keypoints: good }] }, { width: 64, height: 64 })).toEqual(
      standing64(),
    );
    expect(parseOpenPoseJson({ people: [] }, { width: 10, height: 20 })).toEqual(emptyPose(10, 20));
  });
});

describe('editing', () => {
  it('never mutates its input', () => {
    const doc = deepFreeze(addPerson(standing64(), 'jumping', { x: 40, y: 50, scale: 30 }));
    const snapshot = JSON.stringify(doc);
    const results = [
      addPerson(doc),
      addPerson(doc, 'running', { x: 5, y: 5, scale: 5 }),
      removePerson(doc, 0),
      moveKeypoint(doc, 1, 4, 10, 11),
      setKeypointVisible(doc, 0, 3, false),
      setKeypointVisible(setKeypointVisible(doc, 0, 3, false), 0, 3, true),
      mirrorPerson(doc, 1),
      mirrorPerson(doc, 1, { swapSides: false }),
      translatePerson(doc, 0, 3, -4),
      scalePerson(doc, 1, 2),
      scalePerson(doc, 1, 0.5, { x: 0, y: 0 }),
      applyTemplate(doc, 0, 'sitting'),
    ];
    expect(JSON.stringify(doc)).toBe(snapshot);
    for (const r of results) expect(r).not.toBe(doc);
  });

  it('adds and removes people', () => {
    const doc = addPerson(emptyPose(100, 200));
    expect(doc.people).toHaveLength(1);
    const box = personBounds(doc.people[0])!;
    expect(box.maxY).toBeCloseTo(180 - 0.04 * 160, 9); // ankles just above the ground point at 90% height
    expect((box.minX + box.maxX) / 2).toBeCloseTo(50, 9);
    const two = addPerson(doc, 'waving');
    expect(removePerson(two, 0).people).toEqual([two.people[1]]);
    expect(() => removePerson(two, 2)).toThrow(
      'person 2 does not exist; the pose has 2 people (indices 0-1)',
    );
    expect(() => addPerson(doc, 'dancing' as never)).toThrow(/unknown pose template "dancing"/);
  });

  it('moves keypoints, showing hidden ones with confidence 1', () => {
    let doc = standing64();
    doc = moveKeypoint(doc, 0, KEYPOINT.nose, 30, 5);
    expect(doc.people[0].keypoints[0]).toEqual({ x: 30, y: 5, confidence: 1 });
    doc = setKeypointVisible(doc, 0, KEYPOINT.left_wrist, false);
    doc = moveKeypoint(doc, 0, KEYPOINT.left_wrist, 50, 40);
    expect(doc.people[0].keypoints[7]).toEqual({ x: 50, y: 40, confidence: 1 });
    expect(() => moveKeypoint(doc, 0, 18, 1, 1)).toThrow(/keypoint index 18 is out of range; use 0-17/);
    expect(() => moveKeypoint(doc, 0, 1, Number.NaN, 1)).toThrow(/keypoint x must be a finite number/);
  });

  it('restores a hidden keypoint where the fitted standing figure has it', () => {
    const doc = standing64();
    const restored = setKeypointVisible(setKeypointVisible(doc, 0, 6, false), 0, 6, true);
    const k = restored.people[0].keypoints[6]!;
    expect(k.x).toBeCloseTo(doc.people[0].keypoints[6]!.x, 6);
    expect(k.y).toBeCloseTo(doc.people[0].keypoints[6]!.y, 6);
    expect(setKeypointVisible(doc, 0, 6, true)).toBe(doc);
  });

  it('translates, scales and re-poses people', () => {
    const doc = standing64();
    const moved = translatePerson(doc, 0, 5, -2);
    expect(moved.people[0].keypoints[1]).toEqual({
      x: 37,
      y: doc.people[0].keypoints[1]!.y - 2,
      confidence: 1,
    });
    const box = personBounds(doc.people[0])!;
    const scaled = personBounds(scalePerson(doc, 0, 0.5).people[0])!;
    expect(scaled.maxX - scaled.minX).toBeCloseTo((box.maxX - box.minX) / 2, 9);
    expect(scaled.minY + scaled.maxY).toBeCloseTo(box.minY + box.maxY, 9);
    expect(() => scalePerson(doc, 0, 0)).toThrow(/scale factor must be a positive number/);
    const sitting = applyTemplate(doc, 0, 'sitting');
    expect(sitting.people[0]).toEqual(personFromTemplate('sitting', fitPlacement(doc.people[0])!));
    const at = fitPlacement(doc.people[0])!;
    expect(at.x).toBeCloseTo(32, 9);
    expect(at.y).toBeCloseTo(60, 9);
    expect(at.scale).toBeCloseTo(56, 9);
  });
});

describe('POSE_TEMPLATES', () => {
  it('has six front-view COCO-18 skeletons about one standing height tall', () => {
    expect(Object.keys(POSE_TEMPLATES)).toEqual([...POSE_TEMPLATE_NAMES]);
    expect(POSE_TEMPLATE_NAMES).toEqual(['standing', 'walking', 'running', 'sitting', 'waving', 'jumping']);
    for (const name of POSE_TEMPLATE_NAMES) {
      const t = POSE_TEMPLATES[name];
      expect(t, name).toHaveLength(18);
      for (const p of t) {
        expect(p![1], name).toBeLessThanOrEqual(0);
        expect(p![1], name).toBeGreaterThan(-1.25);
        expect(Math.abs(p![0]), name).toBeLessThan(0.35);
      }
      // front view: the person's right side is on the viewer's left
      for (const [r, l] of [
        [2, 5],
        [8, 11],
        [14, 15],
        [16, 17],
      ]) {
        expect(t[r]![0], `${name} ${KEYPOINT_NAMES[r]}`).toBeLessThan(t[l]![0]);
      }
      // the neck is the middle of the shoulders, as in OpenPose
      expect(t[1]![0]).toBeCloseTo((t[2]![0] + t[5]![0]) / 2, 9);
    }
  });
});

describe('poseSilhouette', () => {
  it('covers every pixel the rendering paints, and little else', () => {
    const doc = addPerson(standing64(), 'waving', { x: 16, y: 60, scale: 44 });
    const img = renderOpenPose(doc, 64, 64);
    const mask = poseSilhouette(doc, 64, 64);
    expect(mask).toHaveLength(64 * 64);
    let painted = 0;
    for (let o = 0; o < 64 * 64; o++) {
      expect(mask[o] === 0 || mask[o] === 1).toBe(true);
      if (img.data[3 * o] + img.data[3 * o + 1] + img.data[3 * o + 2] > 0) {
        painted++;
        expect(mask[o], `pixel ${o % 64},${Math.floor(o / 64)}`).toBe(1);
      }
    }
    const area = mask.reduce((n, v) => n + v, 0);
    expect(area).toBeGreaterThan(painted);
    expect(area).toBeLessThan(64 * 64 * 0.5);
    expect(mask[0]).toBe(0);
    expect(mask[64 * 64 - 1]).toBe(0);
  });

  it('fills the torso and head, follows thickness and ignores hidden parts', () => {
    const doc = standing64();
    const kps = doc.people[0].keypoints;
    const mask = poseSilhouette(doc, 64, 64, { thickness: 2 });
    const at = (x: number, y: number): number => mask[Math.round(y) * 64 + Math.round(x)];
    expect(at((kps[2]!.x + kps[11]!.x) / 2, (kps[2]!.y + kps[11]!.y) / 2)).toBe(1); // torso centre
    expect(at(kps[0]!.x, kps[0]!.y - 2)).toBe(1); // head
    const thin = mask.reduce((n, v) => n + v, 0);
    const thick = poseSilhouette(doc, 64, 64, { thickness: 8 }).reduce((n, v) => n + v, 0);
    expect(thick).toBeGreaterThan(thin);
    let hidden: PoseDocument = doc;
    for (const j of [6, 7]) hidden = setKeypointVisible(hidden, 0, j, false);
    const noArm = poseSilhouette(hidden, 64, 64, { thickness: 2 });
    expect(noArm[Math.round(kps[7]!.y) * 64 + Math.round(kps[7]!.x)]).toBe(0);
    expect(poseSilhouette(emptyPose(64, 64), 16, 16).every((v) => v === 0)).toBe(true);
  });
});

describe('helpers', () => {
  it('tells documents from images', () => {
    expect(isPoseDocument(standing64())).toBe(true);
    expect(isPoseDocument({ width: 1, height: 1, data: new Uint8Array(3) })).toBe(false);
  });

  it('warns about images that do not look like OpenPose renderings', () => {
    expect(openPoseImageWarning(renderOpenPose(standing64(), 64, 64), 'pose.png')).toBeUndefined();
    const white = { width: 4, height: 4, data: new Uint8Array(48).fill(255) };
    expect(openPoseImageWarning(white, 'photo.jpg')).toMatch(
      /^photo\.jpg does not look like an OpenPose rendering \(only 0% of it is black/,
    );
    const black = { width: 4, height: 4, data: new Uint8Array(48) };
    expect(openPoseImageWarning(black, 'blank.png')).toMatch(/blank\.png is entirely black/);
  });
});
