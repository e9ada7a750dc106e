import { readFile, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import * as prettier from 'prettier';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decodeImage } from '../image/image.js';
import { createRandomModel } from '../models/random-model.js';
import {
  segmentationInferenceModel,
  writeSegmentation,
  type SegmentationArchitecture,
} from '../tiny/segmentation-stage.js';
import { IDENTITY_SUBJECTS } from '../world/identity.js';
import { cleanupTempDirs, makeTempDir } from '../../test/helpers/random-model.js';
import {
  identityCast,
  identityClassNoun,
  runTable1,
  TABLE1_NS,
  TABLE1_ROWS,
  table1Compositions,
  table1Layout,
  writeTable1,
  type Table1,
  type Table1Options,
} from './table1.js';

const TINY_CLIP = join(import.meta.dirname, '..', 'weights', 'tiny-sd', 'clip');

afterAll(cleanupTempDirs);

describe('Table 1 pieces', () => {
  it('makes a cast of identity subjects with identifiers in order, caption class nouns and exact masks', () => {
    const { cast, subjects } = identityCast([0, 2, 4, 8], ['sks', 'zwx', 'qlv', 'bvx']);
    expect(subjects.map((s) => s.prompt)).toEqual([
      'a sks cartoon man',
      'a zwx man',
      'a qlv cat',
      'a bvx mug',
    ]);
    expect(IDENTITY_SUBJECTS.map(identityClassNoun)).toEqual([
      'cartoon man',
      'cartoon woman',
      'man',
      'woman',
      'cat',
      'dog',
      'dog',
      'car',
      'mug',
      'chair',
      'lamp',
    ]);
    const cat = cast.subjects[2];
    expect(cat.images).toHaveLength(11);
    expect(cat.masks).toHaveLength(11);
    const mask = cat.masks?.[0];
    expect(mask?.length).toBe(128 * 128);
    const area = mask?.reduce((a, b) => a + b, 0) ?? 0;
    expect(area).toBeGreaterThan(200);
    expect(area).toBeLessThan((128 * 128) / 2);
    expect(() => identityCast([0, 0], ['sks', 'zwx'])).toThrow(/listed twice/);
    expect(() => identityCast([0, 1], ['sks'])).toThrow(/need as many identifier tokens/);
  });

  it('draws fixed, distinct compositions, every subject once at n = 1 before any repeats', () => {
    const pool = [0, 3, 4, 7, 9];
    expect(table1Compositions(pool, 2, 4)).toEqual(table1Compositions(pool, 2, 4));
    const pairs = table1Compositions(pool, 2, 10).map((c) => [...c].sort((a, b) => a - b).join(','));
    expect(new Set(pairs).size).toBe(10); // all C(5, 2) pairs
    expect(new Set(table1Compositions(pool, 1, 5).map((c) => c[0]))).toEqual(new Set(pool));
    expect(table1Compositions(pool, 4, 7)).toHaveLength(7); // only 5 distinct: then repeats
    expect(() => table1Compositions(pool, 6, 1)).toThrow(/needs at least 6 subjects/);
  });

  it('lays out a composition: one region per subject with its local prompt, all of them in the global prompt', () => {
    const { subjects } = identityCast([0, 4, 7], ['sks', 'zwx', 'qlv']);
    const l = table1Layout(subjects, 3, 0, 1, 128);
    expect(l.layout.regions).toHaveLength(3);
    expect(l.prompt).toMatch(/^a sks cartoon man and a zwx cat and a qlv car (in|on) /);
    expect(l.prompt).not.toMatch(/kitchen|bedroom|classroom/); // a car stays outdoors
    l.layout.regions.forEach((r, j) => {
      expect(r.prompt).toBe(l.subjects[j].prompt);
      expect(r.className).toBe(IDENTITY_SUBJECTS[l.subjects[j].index].className);
      expect(r.pixelMask.some((v) => v === 1)).toBe(true);
    });
    // another prompt of the composition is another place
    expect(table1Layout(subjects, 3, 0, 0, 128).prompt).not.toBe(l.prompt);
  });
});

describe('Table 1 on the random model', () => {
  let root: string;
  let options: Table1Options;
  beforeAll(async () => {
    root = await makeTempDir('table1-');
    const baseModelDir = await createRandomModel(join(root, 'base'));
    // a small segmentation model of the tiny architecture to fine-tune the cast's from (the cast's
    // segmentation model trains at 128x128): keeps SAL, SAS and the identifier check fast
    const small: SegmentationArchitecture = {
      imageSize: 128,
      stemChannels: 8,
      stageChannels: [8, 8, 16, 16],
      stageBlocks: [1, 1, 1, 1],
      decoderChannels: [16, 8, 8, 8],
      normGroups: 4,
      classes: ['background', 'cat'],
    };
    const segmentation = join(baseModelDir, 'segmentation');
    await rm(segmentation, { recursive: true });
    await writeSegmentation(segmentation, segmentationInferenceModel([], small), small);
    options = {
      baseModelDir,
      castModelDir: join(root, 'cast-model'),
      subjects: [0, 4, 7, 8],
      training: {
        steps: 2,
        batch: 2,
        classImages: 1,
        samplesPerSubject: 3,
        compositesPerSubject: 1,
        segmentationSteps: 1,
      },
      sampling: { steps: 3 },
      counts: { compositions: 1, prompts: 1, images: 1 },
      clipDir: TINY_CLIP,
    };
  });

  it('fills every row at every n with finite figures in range, writes agreeing json and md, and reuses the cast', async () => {
    const result = await runTable1(options);
    expect(result.castReused).toBe(false);
    expect(result.rows.map((r) => r.key)).toEqual(TABLE1_ROWS.map((r) => r.key));
    expect(result.renders).toBe(TABLE1_ROWS.length * TABLE1_NS.length);
    for (const row of TABLE1_ROWS) {
      expect(Object.keys(result.table[row.key])).toEqual(['1', '2', '3', '4']);
      for (const n of TABLE1_NS) {
        const cell = result.table[row.key][String(n)];
        for (const v of [cell.clipI, cell.clipT, cell.sas]) {
          expect(Number.isFinite(v)).toBe(true);
          expect(Math.abs(v)).toBeLessThanOrEqual(1);
        }
        if (n === 2) {
          expect(cell.identifiersFound).toBeGreaterThanOrEqual(0);
          expect(cell.identifiersFound).toBeLessThanOrEqual(1);
        } else expect(cell.identifiersFound).toBeUndefined();
      }
    }

    const out = join(root, 'out');
    const paths = await writeTable1(result, out);
    const json = JSON.parse(await readFile(paths.json, 'utf8')) as Table1;
    expect(json).toEqual(result.table);
    // every figure of the Markdown table is the JSON's, to 3 decimals
    const md = await readFile(paths.markdown, 'utf8');
    for (const row of TABLE1_ROWS) {
      const line = md.split('\n').find((l) => {
        const [, method, configuration] = l.split('|').map((c) => c.trim());
        return method === row.method && configuration === row.configuration;
      });
      expect(line, row.key).toBeDefined();
      const figures = (line ?? '')
        .split('|')
        .slice(3, -1)
        .map((c) => c.trim());
      const cells = json[row.key];
      expect(figures).toEqual([
        ...TABLE1_NS.flatMap((n) => {
          const c = cells[String(n)];
          return [c.clipI, c.clipT, c.sas].map((v) => v.toFixed(3));
        }),
        (cells['2'].identifiersFound ?? -1).toFixed(3),
      ]);
    }
    // written as Prettier would format it (the docs pass the lint's format check as written)
    const prettierOptions =
      (await prettier.resolveConfig(join(import.meta.dirname, '..', '..', 'docs', 'table1.md'))) ?? {};
    expect(await prettier.format(md, { ...prettierOptions, parser: 'markdown' })).toBe(md);
    const grid = await decodeImage(await readFile(paths.samples));
    const side = 64; // the random model's pictures
    expect(grid.width).toBe((TABLE1_ROWS.length + 1) * (side + 2) - 2);
    expect(grid.height).toBe(TABLE1_NS.length * (side + 2) - 2);

    // the second run finds the cast model and does not train it again
    const trainedAt = (await stat(join(options.castModelDir, 'cast.json'))).mtimeMs;
    const baseline = TABLE1_ROWS[0].key;
    const again = await runTable1({ ...options, ns: [1], rows: [baseline] });
    expect(again.castReused).toBe(true);
    expect(again.trainingSeconds).toBe(0);
    expect((await stat(join(options.castModelDir, 'cast.json'))).mtimeMs).toBe(trainedAt);
    expect(again.table).toEqual({ [baseline]: { 1: result.table[baseline]['1'] } });
    await expect(runTable1({ ...options, rows: ['MSP w/ magic'] })).rejects.toThrow(
      /unknown rows 'MSP w\/ magic'/,
    );
  }, 300_000); // about 15 s on a quiet 2-core machine, a few minutes on a loaded one
});
