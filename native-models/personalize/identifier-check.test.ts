import { cp, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decodeImage } from '../image/image.js';
import { createRandomModel } from '../models/random-model.js';
import { generateComposite } from '../pipelines/msp.js';
import { randomSegmentationModel } from '../pipelines/sal.js';
import { StableDiffusion } from '../pipelines/stable-diffusion.js';
import { Runtime } from '../runtime/session.js';
import { classInRegion, judgeImage, SegmentationJudge } from '../tiny/judge.js';
import { INDOOR_KINDS } from '../world/backgrounds.js';
import { PAIR_CAST } from '../../test/helpers/cast.js';
import { trainCast } from './cast-training.js';
import {
  checkIdentifiers,
  defaultClassJudgeDir,
  heldOutScene,
  identifierCheckGrid,
  identifierCheckSummary,
  judgeClassOf,
  type CheckSubject,
  type IdentifierCheckResult,
} from './identifier-check.js';
import { runMsp as msp } from '../../test/helpers/cli.js';

const SUBJECTS: CheckSubject[] = [
  { identifier: 'sks', classNoun: 'cartoon man', prompt: 'a sks cartoon man' },
  { identifier: 'zwx', classNoun: 'cat', prompt: 'a zwx cat' },
];

describe('held-out scenes', () => {
  const sizes = [
    { width: 64, height: 64, vaeScaleFactor: 8 },
    { width: 128, height: 128, vaeScaleFactor: 4 },
  ];

  it('split the latent grid into two separated side-by-side regions and the background, varying by index', () => {
    for (const size of sizes) {
      const lw = size.width / size.vaeScaleFactor;
      const splits = new Set<string>();
      for (let i = 0; i < 20; i++) {
        const scene = heldOutScene(SUBJECTS, i, size);
        expect(scene.segments).toHaveLength(3);
        const [left, right, background] = scene.segments.map((s) => s.mask);
        expect(left.every((v, p) => v + right[p] + background[p] === 1)).toBe(true);
        const columns = (m: Float32Array) => [...m.keys()].filter((p) => m[p] === 1).map((p) => p % lw);
        const [l, r] = [columns(left), columns(right)];
        expect(l.length).toBeGreaterThan(0);
        expect(r.length).toBeGreaterThan(0);
        // a gap of at least one column; the split between 40% and 60% (give or take rounding)
        expect(Math.min(...r) - Math.max(...l)).toBeGreaterThanOrEqual(2);
        const split = (Math.max(...l) + 1 + Math.min(...r)) / 2 / lw;
        expect(split).toBeGreaterThanOrEqual(0.4 - 1 / lw);
        expect(split).toBeLessThanOrEqual(0.6 + 1 / lw);
        splits.add(`${Math.max(...l)},${Math.min(...r)},${left.indexOf(1)},${right.indexOf(1)}`);
        // the judge's masks are the latent ones at pixel size
        const f = size.vaeScaleFactor;
        scene.pixelMasks.forEach((m, j) => {
          let differing = 0;
          for (let p = 0; p < m.length; p++) {
            const [x, y] = [p % size.width, Math.floor(p / size.width)];
            if (m[p] !== scene.segments[j].mask[Math.floor(y / f) * lw + Math.floor(x / f)]) differing++;
          }
          expect(differing).toBe(0);
        });
      }
      expect(splits.size).toBeGreaterThan(10);
    }
  });

  it('alternate the sides and show every place with both orders', () => {
    const size = sizes[1];
    const scenes = Array.from({ length: 20 }, (_, i) => heldOutScene(SUBJECTS, i, size));
    expect(scenes[0].prompt).toBe('a sks cartoon man and a zwx cat in a park');
    expect(scenes[0].segments.map((s) => s.prompt)).toEqual(['a sks cartoon man', 'a zwx cat', 'in a park']);
    expect(scenes[1].prompt).toBe('a zwx cat and a sks cartoon man in a park');
    scenes.forEach((s, i) =>
      expect(s.sides.map((x) => x.identifier)).toEqual(i % 2 === 0 ? ['sks', 'zwx'] : ['zwx', 'sks']),
    );
    expect(new Set(scenes.map((s) => s.place)).size).toBe(10);
    for (let i = 0; i < 20; i += 2) expect(scenes[i + 1].place).toBe(scenes[i].place);
    // the same index gives the same scene
    expect(heldOutScene(SUBJECTS, 7, size)).toEqual(scenes[7]);
  });

  it('take every ordered pair of a larger cast in turn, outdoors with a car', () => {
    const three = [...SUBJECTS, { identifier: 'qlv', classNoun: 'car', prompt: 'a qlv car' }];
    const size = sizes[0];
    const pairs = Array.from({ length: 12 }, (_, i) =>
      heldOutScene(three, i, size).sides.map((s) => s.identifier),
    );
    expect(pairs.slice(0, 6)).toEqual([
      ['sks', 'zwx'],
      ['zwx', 'sks'],
      ['sks', 'qlv'],
      ['qlv', 'sks'],
      ['zwx', 'qlv'],
      ['qlv', 'zwx'],
    ]);
    expect(pairs.slice(6)).toEqual(pairs.slice(0, 6));
    for (let i = 0; i < 60; i++) {
      const scene = heldOutScene(three, i, size);
      if (scene.sides.some((s) => s.identifier === 'qlv')) expect(INDOOR_KINDS).not.toContain(scene.place);
    }
  });

  it('refuse latent grids too small for two regions', () => {
    expect(() => heldOutScene(SUBJECTS, 0, { width: 32, height: 32, vaeScaleFactor: 8 })).toThrow(
      /4x4 latent grid; the check needs whole sides of at least 8/,
    );
  });
});

describe('the class judge', () => {
  it('maps a class noun to the longest tail of its words among the classes, never the background', () => {
    const classes = ['background', 'man', 'woman', 'cat', 'teddy bear'];
    expect(judgeClassOf('cartoon man', classes)).toBe('man');
    expect(judgeClassOf('Ginger  Cat', classes)).toBe('cat');
    expect(judgeClassOf('old teddy bear', classes)).toBe('teddy bear');
    expect(judgeClassOf('bear', classes)).toBeUndefined();
    expect(judgeClassOf('background', classes)).toBeUndefined();
    expect(judgeClassOf('', classes)).toBeUndefined();
  });
});

describe('the identifier check of a cast model', () => {
  let root: string;
  let castDir: string;
  let result: IdentifierCheckResult;
  beforeAll(async () => {
    root = await mkdtemp(join(tmpdir(), 'check-cast-'));
    const base = await createRandomModel(join(root, 'base'));
    castDir = join(root, 'pair-model');
    // the UNet as trainCast writes it; the segmentation model a random one of the same contract
    // (background + the identifiers), since training its graph would take most of the test's time
    const trained = await trainCast({
      baseModelDir: base,
      cast: PAIR_CAST,
      outDir: castDir,
      steps: 1,
      batch: 1,
      classImages: 0,
      samplesPerSubject: 3,
      compositesPerSubject: 1,
      segmentationSteps: 0,
    });
    const identifiers = trained.manifest.subjects.map((s) => s.identifier);
    await expect(checkIdentifiers({ modelDir: castDir })).rejects.toThrow(
      /has no segmentation model to judge with; train it with --segmentation-steps of at least 1/,
    );
    const segmentation = randomSegmentationModel(['background', ...identifiers], 3);
    await mkdir(join(castDir, 'segmentation'));
    await writeFile(join(castDir, 'segmentation', 'model.onnx'), segmentation.model);
    await writeFile(join(castDir, 'segmentation', 'classes.json'), segmentation.classesJson);
    result = await checkIdentifiers({ modelDir: castDir, scenes: 4, steps: 3 });
  }, 120_000);
  afterAll(async () => {
    await rm(root, { recursive: true, force: true });
  });

  it('reports figures that agree with its scene rows, and its settings', () => {
    const { scenes } = result;
    expect(scenes.map((s) => s.index)).toEqual([0, 1, 2, 3]);
    expect(scenes.map((s) => s.seed)).toEqual([500, 501, 502, 503]);
    expect(scenes.map((s) => s.sides)).toEqual([
      ['sks', 'zwx'],
      ['zwx', 'sks'],
      ['sks', 'zwx'],
      ['zwx', 'sks'],
    ]);
    for (const s of scenes) {
      expect(Object.keys(s.found).sort()).toEqual(['sks', 'zwx']);
      expect(s.passed).toBe(s.found.sks && s.found.zwx);
    }
    expect(result.passRate).toBe(scenes.filter((s) => s.passed).length / 4);
    for (const id of ['sks', 'zwx'])
      expect(result.perIdentifier[id]).toBe(scenes.filter((s) => s.found[id]).length / 4);
    expect(result.settings).toMatchObject({
      scenes: 4,
      steps: 3,
      guidanceScale: 7.5,
      scaffoldingSteps: 1,
      globalDiffuserSteps: 1,
      salWeight: 0,
      salSteps: [],
      seed: 500,
      width: 64,
      height: 64,
      vaeScaleFactor: 8,
    });
    expect(result.images.map((i) => [i.width, i.height])).toEqual(Array(4).fill([64, 64]));
    const passed = scenes.filter((s) => s.passed).length;
    expect(identifierCheckSummary(result)).toBe(
      `both subjects in their own regions in ${passed}/4 scenes (${Math.round(result.passRate * 100)}%); sks ${Math.round(result.perIdentifier.sks * 100)}%, zwx ${Math.round(result.perIdentifier.zwx * 100)}%`,
    );
  });

  it('is reproducible: a scene rendered again from the recorded settings gives the same picture and verdict', async () => {
    const s = result.settings;
    const runtime = new Runtime();
    const judge = await SegmentationJudge.load(join(castDir, 'segmentation'));
    try {
      const sd = await StableDiffusion.load(castDir, runtime);
      for (const row of result.scenes.slice(0, 2)) {
        const scene = heldOutScene(result.subjects, row.index, s);
        const { image } = await generateComposite(sd, {
          prompt: row.prompt,
          negativePrompt: '',
          segments: scene.segments,
          steps: s.steps,
          scheduler: s.scheduler,
          guidanceScale: s.guidanceScale,
          seed: row.seed,
          width: s.width,
          height: s.height,
          scaffoldingSteps: s.scaffoldingSteps,
          globalDiffuserSteps: s.globalDiffuserSteps,
          globalDiffuserWeight: s.globalDiffuserWeight,
        });
        expect(image.data).toEqual(result.images[row.index].data);
        const map = await judgeImage(judge, image);
        const found = Object.fromEntries(
          row.sides.map((id, j) => [id, classInRegion(map, scene.pixelMasks[j], id)]),
        );
        expect(found).toEqual(row.found);
      }
    } finally {
      await judge.release();
      await runtime.dispose();
    }
  });

  it('draws the scenes in a grid with each region outlined by its verdict', () => {
    const grid = identifierCheckGrid(result, { columns: 3 });
    expect([grid.width, grid.height]).toEqual([3 * 64 + 2 * 2, 2 * 64 + 2]);
    // scene 1 (second column): the top-left corner of its left region
    const row = result.scenes[1];
    const corner = heldOutScene(result.subjects, 1, result.settings).pixelMasks[0].indexOf(1);
    const [x, y] = [(corner % 64) + 66, Math.floor(corner / 64)];
    const rgb = Array.from(grid.data.subarray(3 * (y * grid.width + x), 3 * (y * grid.width + x) + 3));
    expect(rgb).toEqual(row.found[row.sides[0]] ? [40, 200, 60] : [230, 30, 40]);
  });

  it('guides with SAL when asked, on the first half of the steps', async () => {
    const sal = await checkIdentifiers({ modelDir: castDir, scenes: 1, steps: 4, salWeight: 1 });
    expect(sal.settings.salSteps).toEqual([0, 1]);
    expect(sal.scenes).toHaveLength(1);
  });

  it('refuses a folder that is not a cast model, a one-subject cast and a judge that lacks an identifier', async () => {
    const base = join(root, 'base');
    await expect(checkIdentifiers({ modelDir: base })).rejects.toThrow(
      `${base} is not a cast model: cast.json is missing; train one with msp train-cast`,
    );
    const fake = join(root, 'fake');
    await mkdir(fake);
    const manifest = JSON.parse(await readFile(join(castDir, 'cast.json'), 'utf8')) as {
      subjects: unknown[];
    };
    await writeFile(
      join(fake, 'cast.json'),
      JSON.stringify({ ...manifest, subjects: manifest.subjects.slice(0, 1) }),
    );
    await expect(checkIdentifiers({ modelDir: fake })).rejects.toThrow(
      /lists 1 subject; the identifier check needs a cast of at least 2/,
    );
    await writeFile(join(fake, 'cast.json'), JSON.stringify(manifest));
    await cp(join(castDir, 'segmentation'), join(fake, 'segmentation'), { recursive: true });
    await writeFile(
      join(fake, 'segmentation', 'classes.json'),
      JSON.stringify({ classes: ['background', 'sks', 'qlv'] }),
    );
    await expect(checkIdentifiers({ modelDir: fake })).rejects.toThrow(
      /does not know 'zwx' \(its classes: background, sks, qlv\)/,
    );
  });

  it('judges the same pictures a second time with an independent class judge when given one', async () => {
    const classJudgeDir = join(root, 'class-judge');
    const classJudge = randomSegmentationModel(['background', 'man', 'cat', 'car'], 5);
    await mkdir(classJudgeDir);
    await writeFile(join(classJudgeDir, 'model.onnx'), classJudge.model);
    await writeFile(join(classJudgeDir, 'classes.json'), classJudge.classesJson);
    const both = await checkIdentifiers({ modelDir: castDir, scenes: 4, steps: 3, classJudgeDir });
    // the renders and the cast judge's verdicts are those of the check without it
    both.images.forEach((image, i) => expect(image.data).toEqual(result.images[i].data));
    expect(both.scenes.map((s) => s.found)).toEqual(result.scenes.map((s) => s.found));
    const c = both.classJudge;
    expect(c?.classes).toEqual({ sks: 'man', zwx: 'cat' });
    const judge = await SegmentationJudge.load(classJudgeDir);
    try {
      for (const row of both.scenes) {
        const scene = heldOutScene(both.subjects, row.index, both.settings);
        const map = await judgeImage(judge, both.images[row.index]);
        expect(row.classFound).toEqual({
          [row.sides[0]]: classInRegion(map, scene.pixelMasks[0], c?.classes[row.sides[0]] ?? ''),
          [row.sides[1]]: classInRegion(map, scene.pixelMasks[1], c?.classes[row.sides[1]] ?? ''),
        });
        expect(row.classPassed).toBe(Object.values(row.classFound ?? {}).every(Boolean));
      }
    } finally {
      await judge.release();
    }
    expect(c?.passRate).toBe(both.scenes.filter((s) => s.classPassed).length / 4);
    expect(c?.bothPassRate).toBe(both.scenes.filter((s) => s.classPassed && s.passed).length / 4);
    expect(c?.perIdentifier.zwx).toBe(both.scenes.filter((s) => s.classFound?.zwx).length / 4);
    expect(identifierCheckSummary(both).split('\n')[1]).toMatch(
      new RegExp(
        `^class judge ${classJudgeDir}: both classes in their own regions in [0-4]/4 scenes \\(\\d+%\\); sks \\(man\\) \\d+%, zwx \\(cat\\) \\d+%; both judges pass \\d+%$`,
      ),
    );

    // a class judge without the cast's classes is refused before anything renders
    const narrow = join(root, 'narrow-judge');
    const onlyCars = randomSegmentationModel(['background', 'car'], 5);
    await mkdir(narrow);
    await writeFile(join(narrow, 'model.onnx'), onlyCars.model);
    await writeFile(join(narrow, 'classes.json'), onlyCars.classesJson);
    await expect(checkIdentifiers({ modelDir: castDir, classJudgeDir: narrow })).rejects.toThrow(
      `the class judge ${narrow} has no class for 'sks' (cartoon man), 'zwx' (cat); its classes: car`,
    );
    await expect(
      checkIdentifiers({ modelDir: castDir, classJudgeDir: join(root, 'nowhere') }),
    ).rejects.toThrow(/the class judge .*nowhere has no model.onnx/);
  });

  it("defaults to the embedded model's judge only for casts trained from it whose classes it knows", async () => {
    // the test cast was trained from a random model folder named 'base'
    const embedded = join(root, 'base');
    await mkdir(join(embedded, 'segmentation'), { recursive: true });
    const judge = randomSegmentationModel(['background', 'man', 'cat'], 2);
    await writeFile(join(embedded, 'segmentation', 'model.onnx'), judge.model);
    await writeFile(join(embedded, 'segmentation', 'classes.json'), judge.classesJson);
    expect(await defaultClassJudgeDir(castDir, embedded)).toBe(join(embedded, 'segmentation'));
    expect(await defaultClassJudgeDir(castDir, join(root, 'tiny-sd'))).toBeUndefined();
    await writeFile(
      join(embedded, 'segmentation', 'classes.json'),
      JSON.stringify({ classes: ['background', 'man'] }),
    );
    expect(await defaultClassJudgeDir(castDir, embedded)).toBeUndefined();
    expect(await defaultClassJudgeDir(join(root, 'nowhere'), embedded)).toBeUndefined();
    await rm(join(embedded, 'segmentation'), { recursive: true });
  });

  it('runs as msp check-cast: scene lines and a summary, or JSON without pictures; bad folders exit 2', async () => {
    const grid = join(root, 'check.png');
    const text = await msp('check-cast', castDir, '--scenes', '2', '--steps', '2', '--grid', grid);
    expect(text.code).toBe(0);
    const lines = text.stdout.trim().split('\n');
    expect(lines[0]).toMatch(
      /^scene 1 \(seed 500\) sks \| zwx in a park: sks (found|missing), zwx (found|missing) -> (pass|fail)$/,
    );
    expect(lines[1]).toMatch(/^scene 2 \(seed 501\) zwx \| sks in a park: /);
    expect(lines[2]).toMatch(
      /^both subjects in their own regions in [0-2]\/2 scenes \(\d+%\); sks \d+%, zwx \d+%$/,
    );
    expect(lines[3]).toMatch(
      /^settings: 2 DDIM steps, guidance 7.5, scaffolding 0, global diffuser 1, SAL off, seeds 500-501, 64x64/,
    );
    expect(lines[4]).toBe(`wrote ${grid}`);
    const png = await decodeImage(await readFile(grid));
    expect([png.width, png.height]).toEqual([2 * 64 + 2, 64]);

    const json = await msp('check-cast', castDir, '--scenes', '2', '--steps', '2', '--seed', '7', '--json');
    expect(json.code).toBe(0);
    const parsed = JSON.parse(json.stdout) as IdentifierCheckResult;
    expect(parsed).not.toHaveProperty('images');
    expect(parsed.scenes.map((s) => [s.seed, s.sides])).toEqual([
      [7, ['sks', 'zwx']],
      [8, ['zwx', 'sks']],
    ]);
    expect(parsed.passRate).toBe(parsed.scenes.filter((s) => s.passed).length / 2);
    expect(parsed.settings).toMatchObject({ steps: 2, seed: 7, guidanceScale: 7.5 });

    const missing = await msp('check-cast', join(root, 'base'));
    expect(missing.code).toBe(2);
    expect(missing.stderr).toMatch(
      /is not a cast model: cast.json is missing; train one with msp train-cast\n$/,
    );
    expect((await msp('check-cast', castDir, '--scenes', '0')).code).toBe(2);
    const both = await msp(
      'check-cast',
      castDir,
      '--class-judge',
      join(root, 'class-judge'),
      '--no-class-judge',
    );
    expect(both.code).toBe(2);
    expect(both.stderr).toMatch(/--class-judge and --no-class-judge exclude each other/);
  });

  it("prints the class judge's line in msp check-cast --class-judge", async () => {
    const judged = await msp(
      'check-cast',
      castDir,
      '--scenes',
      '1',
      '--steps',
      '2',
      '--class-judge',
      join(root, 'class-judge'),
    );
    expect(judged.code).toBe(0);
    const lines = judged.stdout.trim().split('\n');
    expect(lines[0]).toMatch(/; class judge: sks (found|missing), zwx (found|missing) -> (pass|fail)$/);
    expect(lines[2]).toMatch(
      /^class judge .*class-judge: both classes in their own regions in [01]\/1 scenes/,
    );
  });
});
