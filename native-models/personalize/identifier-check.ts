/**
 * The identifier check of a trained cast (`msp check-cast`): does each identifier token bring out
 * its own subject, in its own region? The acceptance bar: in a panel with 'sks' in one segment and
 * 'zwx' in another, the cast's segmentation model finds each subject in its own region in at least
 * 80% of a held-out set of scenes. Table 1 measures the same on world layouts (table1.ts, section 5);
 * this is the repeatable, stand-alone form on scenes the cast never saw.
 *
 *   1. the cast      `cast.json` of a model folder written by trainCast (identifiers, prompts) and
 *                    its `segmentation/` model (background + one class per identifier): the judge
 *   2. the scenes    held-out two-subject panels, a pure function of the scene index
 *                    ({@link heldOutScene}), described below
 *   3. render        each scene through the MSP pipeline (generateComposite) with seed `seed + index`:
 *                    DDIM, the studio's guidance and scaffolding share (REQUEST_DEFAULTS), the
 *                    paper's global diffuser share without scaffolding (2 of 80 steps, at least 1),
 *                    and optionally SAL binding each segment to its identifier's class
 *   4. judge         the cast's segmentation model reads each picture (tiny/judge.ts judgeImage); a
 *                    subject is found when classInRegion finds its identifier's class in its region;
 *                    a scene passes when every subject in it is found
 *   5. class judge   optionally, a second and independent judge: a class-segmentation model that
 *                    neither trained with the cast nor guides SAL (the base model's `segmentation/`,
 *                    the tiny world's judge) looks for each subject's class noun ('cartoon man' ->
 *                    'man') in its region. The cast's judge can be satisfied by texture that SAL
 *                    painted for it; this one asks whether a real subject of the right kind stands
 *                    there. `bothPassRate` counts the scenes both judges pass.
 *
 * The held-out scenes. Scene i shows one ordered pair of cast subjects: the pairs are (a, b) then
 * (b, a) for every a < b in cast order, taken in turn (a 2-subject cast alternates (sks, zwx),
 * (zwx, sks)), so every subject stands on each side equally often. The place is one of the world's
 * background kinds (world/backgrounds.ts: 'in a park', 'on a beach', ... in that order; outdoor ones
 * only when a subject is a car, tree or house), advancing once every pair has been shown, so each
 * place comes with both orders. Two regions stand side by side on the latent grid: the split point
 * at 40-60% of the width, a gap of 2-6% (at least one latent column), side margins of 2-8%, each
 * region's top at 10-35% of the height and its bottom margin 0-8% (so the two heights differ), drawn
 * from a fixed stream seeded by the index alone: `seed` changes the noise, never the scenes. The
 * background segment is the rest. Prompts: each region its subject's prompt ('a sks cartoon man'),
 * the background the place ('in a park'), the global prompt 'a sks cartoon man and a zwx cat in a
 * park' (left subject first). Training composites place subjects at random over random backgrounds;
 * none of these layouts, seeds or prompts is a training sample.
 *
 * @example
 * const result = await checkIdentifiers({ modelDir: 'library/models/harbour', scenes: 20 });
 * console.log(identifierCheckSummary(result)); // both subjects in their own regions in 17/20 scenes (85%); ...
 * await writeIdentifierCheckGrid(result, 'check.png');
 */
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { basename, join } from 'node:path';
import type { RgbImage } from '../image/image.js';
import { encodePng } from '../image/png.js';
import { writeFileAtomic } from '../io/atomic-write.js';
import { PAPER_PRESETS, planSteps, REQUEST_DEFAULTS } from '../msp/request.js';
import { generateComposite, type CompositeSegment } from '../pipelines/msp.js';
import { loadSegmentationModel, SalGuidance, type SegmentationModel } from '../pipelines/sal.js';
import { StableDiffusion } from '../pipelines/stable-diffusion.js';
import { Runtime } from '../runtime/session.js';
import { Rng } from '../tensor/random.js';
import { imageGrid } from '../tiny/evaluate.js';
import { classInRegion, erodeMask, judgeImage, SegmentationJudge } from '../tiny/judge.js';
import {
  BACKGROUND_KINDS,
  BACKGROUND_PHRASES,
  INDOOR_KINDS,
  type BackgroundKind,
} from '../world/backgrounds.js';
import type { CastManifest } from './cast-training.js';

export class IdentifierCheckError extends Error {
  override name = 'IdentifierCheckError';
}

/** A subject of the cast as `cast.json` records it. */
export interface CheckSubject {
  identifier: string;
  classNoun: string;
  /** 'a sks cartoon man': the local prompt of its region. */
  prompt: string;
}

export interface IdentifierCheckOptions {
  /** A cast model folder written by trainCast (`cast.json`, `segmentation/`). */
  modelDir: string;
  /** Held-out scenes (default 20). */
  scenes?: number;
  /** DDIM steps (default 30). */
  steps?: number;
  /** Classifier-free guidance (default REQUEST_DEFAULTS.guidanceScale, 7.5). */
  guidanceScale?: number;
  /** Scaffolding steps: a count, or a share of the steps (default REQUEST_DEFAULTS, 0.2). */
  scaffoldingSteps?: number;
  /** SAL guidance weight; 0 (default) turns it off. SAL runs on REQUEST_DEFAULTS.sal's steps. */
  salWeight?: number;
  /** Seed of scene 0; scene i uses `seed + i` (default 500). */
  seed?: number;
  /**
   * A class-segmentation model folder (`model.onnx` + `classes.json`) for the independent class
   * judge (step 5); every subject's class noun must name one of its classes. None by default.
   */
  classJudgeDir?: string;
  /** Where sessions are created (default: a new runtime, disposed at the end). */
  runtime?: Runtime;
  signal?: AbortSignal;
  log?: (line: string) => void;
  /** Called as each scene is judged. */
  onScene?: (scene: IdentifierCheckScene, image: RgbImage) => void;
}

/** One held-out scene: who stands where, on which place, with which masks. */
export interface HeldOutScene {
  index: number;
  place: BackgroundKind;
  /** The subjects from left to right. */
  sides: CheckSubject[];
  /** The global prompt: 'a sks cartoon man and a zwx cat in a park'. */
  prompt: string;
  /** generateComposite's segments: the sides' regions in order, then the background (latent masks). */
  segments: CompositeSegment[];
  /** The sides' regions at the picture's size, 1 inside, for the judge. */
  pixelMasks: Uint8Array[];
}

/** One row of the check. */
export interface IdentifierCheckScene {
  index: number;
  seed: number;
  prompt: string;
  place: BackgroundKind;
  /** Identifiers from left to right. */
  sides: string[];
  /** Per identifier in the scene: found by the judge in its own region. */
  found: Record<string, boolean>;
  /** Every subject of the scene was found in its own region. */
  passed: boolean;
  /** With a class judge: per identifier, its class noun found in its own region. */
  classFound?: Record<string, boolean>;
  /** With a class judge: every subject's class was found in its own region. */
  classPassed?: boolean;
}

/** The independent class judge's figures (step 5 of the file header). */
export interface ClassJudgeFigures {
  /** The class-segmentation model folder. */
  dir: string;
  /** Per identifier, the judge class its class noun maps to ('sks' -> 'man'). */
  classes: Record<string, string>;
  /** Per identifier, the fraction of its scenes where its class was found in its region. */
  perIdentifier: Record<string, number>;
  /** The fraction of scenes where every subject's class was found in its region. */
  passRate: number;
  /** The fraction of scenes that both judges passed. */
  bothPassRate: number;
}

/** Everything the renders depended on besides the scenes: enough to render any scene again. */
export interface IdentifierCheckSettings {
  scenes: number;
  steps: number;
  scheduler: 'ddim';
  guidanceScale: number;
  /** The scaffolding step count. */
  scaffoldingSteps: number;
  globalDiffuserSteps: number;
  globalDiffuserWeight: number;
  salWeight: number;
  /** 0-based steps with SAL guidance (empty when SAL is off). */
  salSteps: number[];
  /** Seed of scene 0. */
  seed: number;
  width: number;
  height: number;
  vaeScaleFactor: number;
}

export interface IdentifierCheckResult {
  modelDir: string;
  subjects: CheckSubject[];
  scenes: IdentifierCheckScene[];
  /** Per identifier, the fraction of the scenes it appears in where it was found in its region. */
  perIdentifier: Record<string, number>;
  /** The fraction of scenes that passed: the acceptance figure (bar: 0.8). */
  passRate: number;
  /** With `classJudgeDir`: the independent judge's figures. */
  classJudge?: ClassJudgeFigures;
  settings: IdentifierCheckSettings;
  seconds: number;
  /** The rendered pictures, by scene index. */
  images: RgbImage[];
}

/** Seeds the layout stream of scene i (the noise seed is separate). */
const LAYOUT_SEED = 0x1d_c4ec;

/** Latent grids smaller than this leave the regions a column or two wide. */
const MIN_LATENT_SIDE = 8;

// ---------------------------------------------------------------------------------------------
// the cast

/**
 * The subjects of a cast model folder (its `cast.json`), checked for the identifier check: at least
 * two of them, each with an identifier and a prompt.
 */
export async function readCheckSubjects(modelDir: string): Promise<CheckSubject[]> {
  const castPath = join(modelDir, 'cast.json');
  if (!existsSync(castPath))
    throw new IdentifierCheckError(
      `${modelDir} is not a cast model: cast.json is missing; train one with msp train-cast`,
    );
  let manifest: Partial<CastManifest>;
  try {
    manifest = JSON.parse(await readFile(castPath, 'utf8')) as Partial<CastManifest>;
  } catch (e) {
    throw new IdentifierCheckError(`${castPath}: ${(e as Error).message}`);
  }
  const listed: unknown[] = Array.isArray(manifest.subjects) ? manifest.subjects : [];
  const subjects = listed.map((raw, i): CheckSubject => {
    const s = (raw ?? {}) as Partial<CheckSubject>;
    if (typeof s.identifier !== 'string' || typeof s.prompt !== 'string')
      throw new IdentifierCheckError(`${castPath}: subjects[${i}] needs an "identifier" and a "prompt"`);
    return { identifier: s.identifier, classNoun: s.classNoun ?? '', prompt: s.prompt };
  });
  if (subjects.length < 2)
    throw new IdentifierCheckError(
      `${castPath} lists ${subjects.length} subject${subjects.length === 1 ? '' : 's'}; the identifier check needs a cast of at least 2`,
    );
  return subjects;
}

async function checkSegmentationClasses(segmentationDir: string, subjects: readonly CheckSubject[]) {
  if (!existsSync(join(segmentationDir, 'model.onnx')))
    throw new IdentifierCheckError(
      `${segmentationDir} is missing: the cast has no segmentation model to judge with; train it with --segmentation-steps of at least 1`,
    );
  const judge = await SegmentationJudge.load(segmentationDir);
  const unknown = subjects.filter((s) => !judge.classes.includes(s.identifier));
  if (unknown.length > 0) {
    await judge.release();
    throw new IdentifierCheckError(
      `the segmentation model ${segmentationDir} does not know ${unknown.map((s) => `'${s.identifier}'`).join(', ')} (its classes: ${judge.classes.join(', ')}); train the cast again`,
    );
  }
  return judge;
}

/**
 * The class of a segmentation model that a class noun names: the longest tail of its words that is
 * one of the classes ('cartoon man' -> 'man', 'ginger cat' -> 'cat'), never 'background'.
 *
 * @example
 * judgeClassOf('cartoon woman', ['background', 'man', 'woman']); // 'woman'
 */
export function judgeClassOf(classNoun: string, classes: readonly string[]): string | undefined {
  const words = classNoun.toLowerCase().trim().split(/\s+/).filter(Boolean);
  for (let i = 0; i < words.length; i++) {
    const tail = words.slice(i).join(' ');
    if (tail !== 'background' && classes.includes(tail)) return tail;
  }
  return undefined;
}

/**
 * The class judge a cast gets by default: the embedded model's `segmentation/` when the cast was
 * trained from that model and every class noun names one of its classes; else undefined (a cast of
 * a user's model has no independent judge unless one is given).
 */
export async function defaultClassJudgeDir(
  castModelDir: string,
  embeddedModelDir: string,
): Promise<string | undefined> {
  const dir = join(embeddedModelDir, 'segmentation');
  try {
    const manifest = JSON.parse(
      await readFile(join(castModelDir, 'cast.json'), 'utf8'),
    ) as Partial<CastManifest>;
    if (manifest.baseModel !== basename(embeddedModelDir) || !existsSync(join(dir, 'model.onnx')))
      return undefined;
    const { classes } = JSON.parse(await readFile(join(dir, 'classes.json'), 'utf8')) as {
      classes: string[];
    };
    const subjects = manifest.subjects ?? [];
    return subjects.length > 0 && subjects.every((s) => judgeClassOf(s.classNoun, classes)) ? dir : undefined;
  } catch {
    return undefined; // an unreadable cast.json is checkIdentifiers' error to report
  }
}

async function loadClassJudge(dir: string, subjects: readonly CheckSubject[]) {
  if (!existsSync(join(dir, 'model.onnx')))
    throw new IdentifierCheckError(`the class judge ${dir} has no model.onnx`);
  const judge = await SegmentationJudge.load(dir);
  const classes: Record<string, string> = {};
  const unknown: string[] = [];
  for (const s of subjects) {
    const c = judgeClassOf(s.classNoun, judge.classes);
    if (c) classes[s.identifier] = c;
    else unknown.push(`'${s.identifier}' (${s.classNoun || 'no class noun'})`);
  }
  if (unknown.length > 0) {
    await judge.release();
    throw new IdentifierCheckError(
      `the class judge ${dir} has no class for ${unknown.join(', ')}; its classes: ${judge.classes.filter((c) => c !== 'background').join(', ')}`,
    );
  }
  return { judge, classes };
}

// ---------------------------------------------------------------------------------------------
// the held-out scenes

/** Ordered pairs of cast indices: (a, b) then (b, a) for a < b. */
function orderedPairs(n: number): [number, number][] {
  const pairs: [number, number][] = [];
  for (let a = 0; a < n; a++) for (let b = a + 1; b < n; b++) pairs.push([a, b], [b, a]);
  return pairs;
}

/**
 * Held-out scene `index` of a cast (see the file header): a pure function of the cast, the index
 * and the picture size.
 *
 * @example
 * const scene = heldOutScene(subjects, 3, { width: 128, height: 128, vaeScaleFactor: 4 });
 * scene.sides.map((s) => s.identifier); // ['zwx', 'sks']
 */
export function heldOutScene(
  subjects: readonly CheckSubject[],
  index: number,
  size: { width: number; height: number; vaeScaleFactor: number },
): HeldOutScene {
  if (subjects.length < 2) throw new IdentifierCheckError('a held-out scene needs two cast subjects');
  if (!Number.isSafeInteger(index) || index < 0)
    throw new IdentifierCheckError(`the scene index must be an integer >= 0, got ${index}`);
  const { width, height, vaeScaleFactor: f } = size;
  const [lw, lh] = [width / f, height / f];
  if (!Number.isInteger(lw) || !Number.isInteger(lh) || lw < MIN_LATENT_SIDE || lh < MIN_LATENT_SIDE)
    throw new IdentifierCheckError(
      `a ${width}x${height} picture at VAE factor ${f} has a ${lw}x${lh} latent grid; the check needs whole sides of at least ${MIN_LATENT_SIDE}`,
    );

  // 1. who, and where
  const pairs = orderedPairs(subjects.length);
  const sides = pairs[index % pairs.length].map((k) => subjects[k]);
  const outdoorOnly = sides.some((s) => /\b(car|tree|house)$/.test(s.classNoun));
  const places = BACKGROUND_KINDS.filter((k) => !outdoorOnly || !INDOOR_KINDS.includes(k));
  const place = places[Math.floor(index / pairs.length) % places.length];

  // 2. the two boxes on the latent grid, [x0, x1) x [y0, y1)
  const rng = new Rng(LAYOUT_SEED + index);
  const between = (lo: number, hi: number) => lo + (hi - lo) * rng.nextFloat();
  const split = between(0.4, 0.6);
  const gap = between(0.02, 0.06);
  const leftX0 = Math.round(between(0.02, 0.08) * lw);
  const leftX1 = Math.round((split - gap / 2) * lw);
  const rightX0 = Math.max(leftX1 + 1, Math.round((split + gap / 2) * lw));
  const rightX1 = lw - Math.round(between(0.02, 0.08) * lw);
  const boxes = [
    [leftX0, leftX1],
    [rightX0, rightX1],
  ].map(([x0, x1]) => ({
    x0,
    x1,
    y0: Math.round(between(0.1, 0.35) * lh),
    y1: lh - Math.round(between(0, 0.08) * lh),
  }));

  // 3. latent masks (the background owns the rest) and their pixel versions
  const masks = [...boxes.map(() => new Float32Array(lw * lh)), new Float32Array(lw * lh).fill(1)];
  boxes.forEach((b, j) => {
    for (let y = b.y0; y < b.y1; y++)
      for (let x = b.x0; x < b.x1; x++) {
        masks[j][y * lw + x] = 1;
        masks[2][y * lw + x] = 0;
      }
  });
  const pixelMasks = boxes.map((_, j) => {
    const m = new Uint8Array(width * height);
    for (let y = 0; y < height; y++)
      for (let x = 0; x < width; x++) m[y * width + x] = masks[j][Math.floor(y / f) * lw + Math.floor(x / f)];
    return m;
  });
  const placePhrase = BACKGROUND_PHRASES[place];
  return {
    index,
    place,
    sides,
    prompt: `${sides.map((s) => s.prompt).join(' and ')} ${placePhrase}`,
    segments: [
      ...sides.map((s, j) => ({ prompt: s.prompt, mask: masks[j] })),
      { prompt: placePhrase, mask: masks[2] },
    ],
    pixelMasks,
  };
}

// ---------------------------------------------------------------------------------------------
// the check

/** Renders the held-out scenes with the cast model and judges them; see the file header. */
export async function checkIdentifiers(o: IdentifierCheckOptions): Promise<IdentifierCheckResult> {
  const started = performance.now();
  const log = o.log ?? (() => {});
  const scenes = o.scenes ?? 20;
  const steps = o.steps ?? 30;
  const guidanceScale = o.guidanceScale ?? REQUEST_DEFAULTS.guidanceScale;
  const scaffoldingSteps = o.scaffoldingSteps ?? REQUEST_DEFAULTS.scaffoldingSteps;
  const salWeight = o.salWeight ?? 0;
  const seed = o.seed ?? 500;
  if (!Number.isSafeInteger(scenes) || scenes < 1)
    throw new IdentifierCheckError(`scenes must be an integer of at least 1, got ${scenes}`);
  if (!Number.isSafeInteger(steps) || steps < 2)
    throw new IdentifierCheckError(`steps must be an integer of at least 2, got ${steps}`);
  if (!Number.isFinite(guidanceScale) || guidanceScale < 0)
    throw new IdentifierCheckError(`the guidance scale must be >= 0, got ${guidanceScale}`);
  if (
    !Number.isFinite(scaffoldingSteps) ||
    (Number.isInteger(scaffoldingSteps)
      ? scaffoldingSteps < 0
      : scaffoldingSteps <= 0 || scaffoldingSteps >= 1)
  )
    throw new IdentifierCheckError(
      `scaffolding steps must be a count >= 0 or a share between 0 and 1, got ${scaffoldingSteps}`,
    );
  if (!Number.isFinite(salWeight) || salWeight < 0)
    throw new IdentifierCheckError(`the SAL weight must be >= 0, got ${salWeight}`);
  if (!Number.isSafeInteger(seed) || seed < 0 || !Number.isSafeInteger(seed + scenes))
    throw new IdentifierCheckError(`the seed must be an integer from 0 to 2^53 - 1 - scenes, got ${seed}`);

  // 1. the cast and its judge (checked before any model is loaded)
  const subjects = await readCheckSubjects(o.modelDir);
  const segmentationDir = join(o.modelDir, 'segmentation');
  const judge = await checkSegmentationClasses(segmentationDir, subjects);
  let classJudge: Awaited<ReturnType<typeof loadClassJudge>> | undefined;
  const runtime = o.runtime ?? new Runtime();
  try {
    if (o.classJudgeDir !== undefined) classJudge = await loadClassJudge(o.classJudgeDir, subjects);
    const sd = await StableDiffusion.load(o.modelDir, runtime);
    const width = sd.sizes.defaultImageSize;
    if (width === undefined)
      throw new IdentifierCheckError(`${sd.name}: the model configs give no default image size`);
    const noScaffold = PAPER_PRESETS.noScaffold.settings;
    const plan = planSteps({
      steps,
      scaffoldingSteps,
      globalDiffuserSteps: Math.max(
        1,
        Math.round((steps * noScaffold.globalDiffuserSteps) / noScaffold.steps),
      ),
      sal: { ...REQUEST_DEFAULTS.sal, weight: salWeight },
    });
    if (plan.harmonizationSteps < 0)
      throw new IdentifierCheckError(
        `${steps} steps are too few for ${plan.scaffoldingSteps} scaffolding and ${plan.globalDiffuserSteps} global diffuser steps`,
      );
    const settings: IdentifierCheckSettings = {
      scenes,
      steps,
      scheduler: 'ddim',
      guidanceScale,
      scaffoldingSteps: plan.scaffoldingSteps,
      globalDiffuserSteps: plan.globalDiffuserSteps,
      globalDiffuserWeight: 1,
      salWeight,
      salSteps: plan.salSteps,
      seed,
      width,
      height: width,
      vaeScaleFactor: sd.sizes.vaeScaleFactor,
    };
    const segmentation: SegmentationModel | undefined =
      salWeight > 0 ? await loadSegmentationModel(segmentationDir) : undefined;
    log(
      `check-cast ${sd.name}: ${scenes} scenes of ${subjects.map((s) => s.identifier).join(', ')} at ${width}x${width}; ${identifierCheckSettingsLine(settings)}`,
    );

    // 2.-4. render and judge every scene
    const rows: IdentifierCheckScene[] = [];
    const images: RgbImage[] = [];
    for (let index = 0; index < scenes; index++) {
      o.signal?.throwIfAborted();
      const scene = heldOutScene(subjects, index, settings);
      const sal = segmentation
        ? await SalGuidance.create(sd, segmentation, {
            width,
            height: width,
            subjects: scene.sides.map((s, j) => ({ className: s.identifier, mask: scene.segments[j].mask })),
          })
        : undefined;
      let image: RgbImage;
      try {
        ({ image } = await generateComposite(sd, {
          prompt: scene.prompt,
          negativePrompt: '',
          segments: scene.segments,
          steps,
          scheduler: 'ddim',
          guidanceScale,
          seed: seed + index,
          width,
          height: width,
          scaffoldingSteps: plan.scaffoldingSteps,
          globalDiffuserSteps: plan.globalDiffuserSteps,
          globalDiffuserWeight: 1,
          ...(sal
            ? {
                guide: {
                  steps: new Set(plan.salSteps),
                  weight: salWeight,
                  gradient: (x0: Float32Array) => sal.gradient(x0),
                },
              }
            : {}),
          ...(o.signal ? { signal: o.signal } : {}),
        }));
      } finally {
        await sal?.dispose();
      }
      const map = await judgeImage(judge, image);
      const found = Object.fromEntries(
        scene.sides.map((s, j) => [s.identifier, classInRegion(map, scene.pixelMasks[j], s.identifier)]),
      );
      const row: IdentifierCheckScene = {
        index,
        seed: seed + index,
        prompt: scene.prompt,
        place: scene.place,
        sides: scene.sides.map((s) => s.identifier),
        found,
        passed: Object.values(found).every(Boolean),
      };
      if (classJudge) {
        const classMap = await judgeImage(classJudge.judge, image);
        const classes = classJudge.classes;
        row.classFound = Object.fromEntries(
          scene.sides.map((s, j) => [
            s.identifier,
            classInRegion(classMap, scene.pixelMasks[j], classes[s.identifier]),
          ]),
        );
        row.classPassed = Object.values(row.classFound).every(Boolean);
      }
      rows.push(row);
      images.push(image);
      o.onScene?.(row, image);
    }

    // the figures
    const share = (pick: (r: IdentifierCheckScene) => Record<string, boolean> | undefined) => {
      const per: Record<string, number> = {};
      for (const s of subjects) {
        const seen = rows.filter((r) => s.identifier in (pick(r) ?? {}));
        if (seen.length > 0)
          per[s.identifier] = seen.filter((r) => pick(r)?.[s.identifier]).length / seen.length;
      }
      return per;
    };
    const rate = (test: (r: IdentifierCheckScene) => boolean) => rows.filter(test).length / rows.length;
    return {
      modelDir: o.modelDir,
      subjects,
      scenes: rows,
      perIdentifier: share((r) => r.found),
      passRate: rate((r) => r.passed),
      ...(classJudge && o.classJudgeDir !== undefined
        ? {
            classJudge: {
              dir: o.classJudgeDir,
              classes: classJudge.classes,
              perIdentifier: share((r) => r.classFound),
              passRate: rate((r) => r.classPassed === true),
              bothPassRate: rate((r) => r.passed && r.classPassed === true),
            },
          }
        : {}),
      settings,
      seconds: (performance.now() - started) / 1000,
      images,
    };
  } finally {
    await judge.release();
    await classJudge?.judge.release();
    if (!o.runtime) await runtime.dispose();
  }
}

// ---------------------------------------------------------------------------------------------
// output

const percent = (v: number) => `${Math.round(v * 100)}%`;

/** One line per scene: 'scene 3 (seed 502) zwx | sks on a beach: zwx found, sks missing -> fail'. */
export function identifierCheckSceneLine(s: IdentifierCheckScene): string {
  const found = s.sides.map((id) => `${id} ${s.found[id] ? 'found' : 'missing'}`).join(', ');
  const classes = s.classFound
    ? `; class judge: ${s.sides.map((id) => `${id} ${s.classFound?.[id] ? 'found' : 'missing'}`).join(', ')}`
    : '';
  return `scene ${s.index + 1} (seed ${s.seed}) ${s.sides.join(' | ')} ${BACKGROUND_PHRASES[s.place]}: ${found}${classes} -> ${s.passed ? 'pass' : 'fail'}`;
}

/** 'both subjects in their own regions in 7/10 scenes (70%); sks 80%, zwx 90%'. */
export function identifierCheckSummary(r: IdentifierCheckResult): string {
  const passed = r.scenes.filter((s) => s.passed).length;
  const per = Object.entries(r.perIdentifier)
    .map(([id, v]) => `${id} ${percent(v)}`)
    .join(', ');
  const line = `both subjects in their own regions in ${passed}/${r.scenes.length} scenes (${percent(r.passRate)}); ${per}`;
  const c = r.classJudge;
  if (!c) return line;
  const classPassed = r.scenes.filter((s) => s.classPassed).length;
  const classPer = Object.entries(c.perIdentifier)
    .map(([id, v]) => `${id} (${c.classes[id]}) ${percent(v)}`)
    .join(', ');
  return `${line}\nclass judge ${c.dir}: both classes in their own regions in ${classPassed}/${r.scenes.length} scenes (${percent(c.passRate)}); ${classPer}; both judges pass ${percent(c.bothPassRate)}`;
}

/** '30 DDIM steps, guidance 7.5, scaffolding 6, global diffuser 1, SAL off, seeds 500-519'. */
export function identifierCheckSettingsLine(s: IdentifierCheckSettings): string {
  const sal = s.salWeight > 0 ? `SAL ${s.salWeight} on ${s.salSteps.length} steps` : 'SAL off';
  return `${s.steps} DDIM steps, guidance ${s.guidanceScale}, scaffolding ${s.scaffoldingSteps}, global diffuser ${s.globalDiffuserSteps}, ${sal}, seeds ${s.seed}-${s.seed + s.scenes - 1}`;
}

/** Outline colours: found in its region, missing from it. */
const FOUND_OUTLINE = [40, 200, 60] as const;
const MISSING_OUTLINE = [230, 30, 40] as const;

/**
 * The rendered scenes in a grid, `columns` wide, each region outlined in green when its subject was
 * found there and in red when not.
 */
export function identifierCheckGrid(r: IdentifierCheckResult, { columns = 5 } = {}): RgbImage {
  const pictures = r.scenes.map((row, i) => {
    const image = r.images[i];
    const scene = heldOutScene(r.subjects, row.index, r.settings);
    const data = Uint8Array.from(image.data);
    scene.pixelMasks.forEach((mask, j) => {
      const inner = erodeMask(mask, image.width, image.height);
      const color = row.found[scene.sides[j].identifier] ? FOUND_OUTLINE : MISSING_OUTLINE;
      for (let p = 0; p < mask.length; p++) if (mask[p] === 1 && inner[p] === 0) data.set(color, 3 * p);
    });
    return { width: image.width, height: image.height, data };
  });
  const rows: RgbImage[][] = [];
  for (let i = 0; i < pictures.length; i += columns) rows.push(pictures.slice(i, i + columns));
  return imageGrid(rows);
}

/** Writes {@link identifierCheckGrid} as a PNG. */
export async function writeIdentifierCheckGrid(r: IdentifierCheckResult, path: string): Promise<void> {
  await writeFileAtomic(path, await encodePng(identifierCheckGrid(r)));
}
