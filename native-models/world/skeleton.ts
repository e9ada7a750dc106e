/**
 * COCO-18 skeletons in four orientations, derived from the front-view pose library of
 * `pose/openpose.ts` ({@link POSE_TEMPLATES}: feet at y = 0, head top at y = -1, units of standing height,
 * the person's right side at negative x).
 *
 * How the orientations are derived (every keypoint keeps a position; `visible` says whether it is
 * reported, i.e. drawn in the OpenPose image):
 *
 * - `front`: the template as is; every keypoint visible.
 * - `back`: the person turned around. Each keypoint keeps its label and its x is negated, so the right
 *   side moves to the viewer's right. This is the front view mirrored with left/right swapped, twice
 *   (`mirrorPerson` with `swapSides: false`). The face is not seen: nose and eyes are hidden, ears stay.
 * - `right` / `left` (side views, named after where the figure faces, `dir` = +1 / -1): the lateral
 *   coordinate becomes depth, so it is compressed to {@link SIDE_COMPRESSION} of its width, and a
 *   per-pose forward offset ({@link SIDE_FORWARD}, the part of the motion that a front view hides:
 *   stride, raised knees, thighs of a seated figure, swinging arms) is added along the facing direction:
 *   `x_side = dir * (forward + SIDE_COMPRESSION * x_front)`, `y_side = y_front`. The far side (the
 *   person's left when facing right, right when facing left) is behind the body: its arm, eye and ear
 *   are hidden. The far leg stays visible, as both legs are seen in a side view (and drawn).
 *
 * The drawing in `characters.ts` follows these points exactly; only the face keypoints (nose, eyes,
 * ears) are moved onto the drawn head, whose size depends on the character.
 *
 * @example
 * ```ts
 * const sk = orientedSkeleton('walking', 'right');
 * sk.points[KEYPOINT.right_ankle]; // [x, y] in units of height, x forward of the hips
 * sk.visible[KEYPOINT.left_wrist]; // false: the far arm is behind the body
 * ```
 */
import { KEYPOINT, KEYPOINT_COUNT, POSE_TEMPLATES } from '../pose/openpose.js';
import type { PoseTemplateName } from '../pose/openpose.js';
import type { Orientation } from './classes.js';

/** How much of the lateral (left-right) extent of a front view remains in a side view. */
export const SIDE_COMPRESSION = 0.25;

type Forward = Partial<Record<keyof typeof KEYPOINT, number>>;

/**
 * Forward offsets (units of height, positive = the direction the figure faces) added in side views,
 * per pose and keypoint; keypoints not listed get 0. The face is handled by the head (see
 * `characters.ts`).
 */
export const SIDE_FORWARD: Readonly<Record<PoseTemplateName, Forward>> = Object.freeze({
  standing: { right_wrist: 0.01, left_wrist: 0.01 },
  walking: {
    right_knee: 0.06,
    right_ankle: 0.13,
    left_knee: -0.03,
    left_ankle: -0.13,
    right_elbow: -0.04,
    right_wrist: -0.1,
    left_elbow: 0.04,
    left_wrist: 0.1,
  },
  running: {
    neck: 0.03,
    right_shoulder: 0.03,
    left_shoulder: 0.03,
    right_knee: 0.17,
    right_ankle: 0.07,
    left_knee: -0.04,
    left_ankle: -0.17,
    right_elbow: -0.09,
    right_wrist: -0.02,
    left_elbow: 0.08,
    left_wrist: 0.16,
  },
  sitting: {
    right_hip: -0.03,
    left_hip: -0.03,
    right_knee: 0.2,
    left_knee: 0.2,
    right_ankle: 0.2,
    left_ankle: 0.2,
    right_elbow: 0.05,
    left_elbow: 0.05,
    right_wrist: 0.16,
    left_wrist: 0.16,
  },
  waving: { right_elbow: 0.05, right_wrist: 0.07, left_wrist: 0.01 },
  jumping: { right_knee: 0.05, left_knee: 0.05, right_ankle: -0.03, left_ankle: -0.03 },
});

/** A skeleton in template units: 18 `[x, y]` points (all defined) and their visibility. */
export interface OrientedSkeleton {
  points: [number, number][];
  visible: boolean[];
  /** +1 facing right, -1 facing left, 0 front or back. */
  dir: number;
  /** Which side is nearer the viewer in a side view (`'right'` = the person's right side), else null. */
  nearSide: 'right' | 'left' | null;
}

const RIGHT_SIDE = ['right_shoulder', 'right_elbow', 'right_wrist', 'right_eye', 'right_ear'] as const;
const LEFT_SIDE = ['left_shoulder', 'left_elbow', 'left_wrist', 'left_eye', 'left_ear'] as const;

/**
 * The pose `pose` seen from `orientation`, in template units (see the file header for the derivation).
 *
 * @example
 * ```ts
 * orientedSkeleton('waving', 'back').points[KEYPOINT.right_wrist][0] > 0; // raised hand on the viewer's right
 * ```
 */
export function orientedSkeleton(pose: PoseTemplateName, orientation: Orientation): OrientedSkeleton {
  const template = POSE_TEMPLATES[pose];
  if (!template) throw new RangeError(`unknown pose "${String(pose)}"`);
  const points: [number, number][] = [];
  for (let j = 0; j < KEYPOINT_COUNT; j++) {
    const p = template[j];
    if (!p) throw new Error(`pose template ${pose} has no keypoint ${j}`);
    points.push([p[0], p[1]]);
  }
  const visible = new Array<boolean>(KEYPOINT_COUNT).fill(true);
  if (orientation === 'front') return { points, visible, dir: 0, nearSide: null };
  if (orientation === 'back') {
    for (const p of points) p[0] = -p[0];
    visible[KEYPOINT.nose] = false;
    visible[KEYPOINT.right_eye] = false;
    visible[KEYPOINT.left_eye] = false;
    return { points, visible, dir: 0, nearSide: null };
  }
  const dir = orientation === 'right' ? 1 : -1;
  const forward = SIDE_FORWARD[pose];
  for (const [name, j] of Object.entries(KEYPOINT) as [keyof typeof KEYPOINT, number][]) {
    const f = forward[name] ?? 0;
    points[j][0] = dir * (f + SIDE_COMPRESSION * points[j][0]);
  }
  // Facing right, the person's right side is towards the viewer (see the file header).
  const nearSide = dir > 0 ? 'right' : 'left';
  for (const name of nearSide === 'right' ? LEFT_SIDE : RIGHT_SIDE) visible[KEYPOINT[name]] = false;
  return { points, visible, dir, nearSide };
}
