import { mkdtemp, rm, writeFile, mkdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Rng } from '../tensor/random.js';
import {
  PAPER_PRESETS,
  REQUEST_DEFAULTS,
  RequestError,
  checkSize,
  normalizeColor,
  parseGenerationRequest,
  planSteps,
  resolveScene,
  scaffoldingStepCount,
  serializeGenerationRequest,
  upgradeRequest,
  withSeed,
} from './request.js';
import type { GenerationRequest, RequestIssue } from './request.js';

const EXAMPLE = {
  version: 1,
  prompt: 'two friends at a picnic, comic style',
  negativePrompt: 'blurry',
  segmentMap: 'segments.png',
  backgroundColor: '#000000',
  backgroundPrompt: 'a park with trees',
  segments: [
    { color: '#ff0000', prompt: 'sks male cartoon waving', subject: 'mara' },
    { color: '#00ff00', prompt: 'a red car' },
  ],
  pose: 'pose.json',
  scaffolding: { image: 'scaffold.png' },
  steps: 50,
  scheduler: 'ddim',
  guidanceScale: 7.5,
  scaffoldingSteps: 10,
  globalDiffuserSteps: 2,
  globalDiffuserWeight: 1.0,
  controlnetScale: 1.0,
  sal: { weight: 0.0 },
  seed: 42,
  width: 512,
  height: 512,
};

const MINIMAL = {
  version: 1,
  prompt: 'a picnic',
  segmentMap: 'segments.png',
  segments: [{ color: '#ff0000', prompt: 'a cat' }],
};

/** The issues of a failing parse. */
function issuesOf(json: unknown): RequestIssue[] {
  try {
    parseGenerationRequest(json);
  } catch (e) {
    expect(e).toBeInstanceOf(RequestError);
    return [...(e as RequestError).issues];
  }
  throw new Error('expected a RequestError');
}

function withChanges(changes: Record<string, unknown>): Record<string, unknown> {
  return { ...EXAMPLE, ...changes };
}

describe('parseGenerationRequest', () => {
  it('parses the documented example', () => {
    const r = parseGenerationRequest(EXAMPLE);
    expect(r).toEqual({
      ...EXAMPLE,
      version: 1,
      scheduler: 'ddim',
      sal: { weight: 0, start: 0, end: 0.5, every: 1 },
    });
  });

  it('fills defaults for a minimal request', () => {
    const r = parseGenerationRequest(MINIMAL);
    expect(r).toEqual({
      version: 1,
      prompt: 'a picnic',
      negativePrompt: '',
      backgroundPrompt: 'a picnic',
      segmentMap: 'segments.png',
      backgroundColor: '#000000',
      segments: [{ color: '#ff0000', prompt: 'a cat' }],
      steps: 50,
      scheduler: 'ddim',
      guidanceScale: 7.5,
      scaffoldingSteps: 0.2,
      globalDiffuserSteps: 0,
      globalDiffuserWeight: 1,
      controlnetScale: 1,
      sal: { weight: 0, start: 0, end: 0.5, every: 1 },
    });
    expect(r.seed).toBeUndefined();
    expect(r.pose).toBeUndefined();
    expect(r.scaffolding).toBeUndefined();
  });

  it('normalizes #rgb and uppercase colors to lowercase #rrggbb', () => {
    const r = parseGenerationRequest({
      ...MINIMAL,
      backgroundColor: '#FFF',
      segments: [
        { color: '#F00', prompt: 'a' },
        { color: '#00Ff00', prompt: 'b' },
      ],
      scaffolding: { color: '#888' },
    });
    expect(r.backgroundColor).toBe('#ffffff');
    expect(r.segments.map((s) => s.color)).toEqual(['#ff0000', '#00ff00']);
    expect(r.scaffolding).toEqual({ color: '#888888' });
    expect(normalizeColor('#aBc')).toBe('#aabbcc');
    expect(normalizeColor('red')).toBeUndefined();
    expect(normalizeColor('#12345')).toBeUndefined();
  });

  it('accepts null for pose and scaffolding (none)', () => {
    const r = parseGenerationRequest(withChanges({ pose: null, scaffolding: null }));
    expect(r.pose).toBeUndefined();
    expect(r.scaffolding).toBeUndefined();
  });

  it.each([
    [
      { segments: [EXAMPLE.segments[0], { color: '#00gg00', prompt: 'x' }] },
      'segments[1].color',
      '"#00gg00" is not a #rrggbb color',
    ],
    [{ backgroundColor: 'black' }, 'backgroundColor', '"black" is not a #rrggbb color'],
    [{ steps: 0 }, 'steps', 'must be at least 1, got 0'],
    [{ steps: 12.5 }, 'steps', 'must be a whole number, got 12.5'],
    [{ steps: '50' }, 'steps', 'must be a number, got "50"'],
    [
      { scaffoldingSteps: 10, globalDiffuserSteps: 45 },
      'scaffoldingSteps',
      'scaffoldingSteps (10) + globalDiffuserSteps (45) exceed steps (50)',
    ],
    [
      { scaffoldingSteps: 0.5, globalDiffuserSteps: 30 },
      'scaffoldingSteps',
      'scaffoldingSteps (0.5 = 25 steps) + globalDiffuserSteps (30) exceed steps (50)',
    ],
    [{ scaffoldingSteps: 1.5 }, 'scaffoldingSteps', 'a step count (a whole number >= 0) or a fraction'],
    [{ scaffoldingSteps: -1 }, 'scaffoldingSteps', 'got -1'],
    [{ globalDiffuserSteps: -2 }, 'globalDiffuserSteps', 'must be at least 0, got -2'],
    [{ globalDiffuserWeight: 1.5 }, 'globalDiffuserWeight', 'must be at most 1, got 1.5'],
    [{ guidanceScale: -1 }, 'guidanceScale', 'must be at least 0, got -1'],
    [{ width: 0 }, 'width', 'must be at least 1, got 0'],
    [{ height: 511.5 }, 'height', 'must be a whole number, got 511.5'],
    [{ seed: -1 }, 'seed', 'must be at least 0, got -1'],
    [{ scheduler: 'ddpm' }, 'scheduler', '"ddpm" is not a known scheduler; use one of ddim, euler, euler_a'],
    [{ pose: 'pose.bmp' }, 'pose', '"pose.bmp" must be an OpenPose .json file or an OpenPose image'],
    [{ segmentMap: '' }, 'segmentMap', 'is empty; give a file path'],
    [{ prompt: '  ' }, 'prompt', 'is empty; describe the whole panel'],
    [
      { segments: [{ color: '#ff0000', prompt: '' }] },
      'segments[0].prompt',
      'is empty; describe what this region shows',
    ],
    [{ segments: [{ color: '#ff0000' }] }, 'segments[0].prompt', 'is missing'],
    [{ segments: 'red' }, 'segments', 'must be a list, got "red"'],
    [{ guidanceScal: 7 }, 'guidanceScal', 'unknown field (did you mean "guidanceScale"?)'],
    [
      { segments: [{ color: '#ff0000', promt: 'x', prompt: 'y' }] },
      'segments[0].promt',
      'unknown field (did you mean "prompt"?)',
    ],
    [{ sal: { wieght: 1 } }, 'sal.wieght', 'unknown field (did you mean "weight"?)'],
    [{ sal: { weight: -1 } }, 'sal.weight', 'must be at least 0, got -1'],
    [
      { sal: { weight: 1, start: 0.6, end: 0.4 } },
      'sal.end',
      'must be greater than sal.start (0.6), got 0.4',
    ],
    [{ sal: { weight: 1, every: 0 } }, 'sal.every', 'must be at least 1, got 0'],
    [
      { scaffolding: { image: 'a.png', color: '#fff' } },
      'scaffolding',
      'give either "image" or "color", not both',
    ],
    [{ scaffolding: {} }, 'scaffolding', 'needs "image" (a file path) or "color" (#rrggbb)'],
    [{ scaffolding: { colour: '#fff' } }, 'scaffolding.colour', 'unknown field (did you mean "color"?)'],
    [{ xyzzy: true }, 'xyzzy', 'unknown field'],
    [{ scaffolding: 'x.png' }, 'scaffolding', 'must be {"image": "x.png"} or {"color": "#rrggbb"}'],
    [{ seed: 2 ** 60 }, 'seed', 'must be at most 9007199254740991'],
  ])('%j -> %s', (changes, path, message) => {
    const issues = issuesOf(withChanges(changes));
    const issue = issues.find((i) => i.path === path);
    expect(issue, JSON.stringify(issues)).toBeDefined();
    expect(issue!.message).toContain(message);
  });

  it('reports each problem once', () => {
    expect(issuesOf(withChanges({ seed: 2 ** 60 }))).toHaveLength(1);
  });

  it('reports duplicate segment colors after normalization', () => {
    const issues = issuesOf({
      ...MINIMAL,
      segments: [
        { color: '#F00', prompt: 'a' },
        { color: '#ff0000', prompt: 'b' },
      ],
    });
    expect(issues).toEqual([
      {
        path: 'segments[1].color',
        message: '#ff0000 is already used by segments[0]; give every region its own color',
      },
    ]);
  });

  it('reports a segment color equal to the background color (default or given)', () => {
    expect(issuesOf({ ...MINIMAL, segments: [{ color: '#000', prompt: 'a' }] })).toEqual([
      {
        path: 'segments[0].color',
        message: '#000000 is the backgroundColor; pick another color for this region',
      },
    ]);
    expect(issuesOf({ ...MINIMAL, backgroundColor: '#ff0000' })[0].path).toBe('segments[0].color');
  });

  it('lists every problem in one error, in field order', () => {
    let error: RequestError | undefined;
    try {
      parseGenerationRequest(
        withChanges({
          guidanceScal: 7,
          steps: 0,
          segments: [
            { color: '#00gg00', prompt: 'x' },
            { color: '#000', prompt: 'y' },
          ],
          width: -5,
        }),
      );
    } catch (e) {
      error = e as RequestError;
    }
    expect(error).toBeInstanceOf(RequestError);
    expect(error!.issues.map((i) => i.path)).toEqual([
      'segments[0].color',
      'segments[1].color',
      'steps',
      'width',
      'guidanceScal',
    ]);
    expect(error!.message).toMatch(/^invalid generation request \(5 problems\): segments\[0\]\.color: /);
    expect(error!.message).toContain('guidanceScal: unknown field (did you mean "guidanceScale"?)');
  });

  it('requires prompt, segmentMap and segments', () => {
    const issues = issuesOf({ version: 1 });
    expect(issues).toEqual([
      { path: 'prompt', message: 'is missing' },
      { path: 'segmentMap', message: 'is missing' },
      { path: 'segments', message: 'is missing' },
    ]);
  });

  it('checks the version first', () => {
    expect(issuesOf({ ...MINIMAL, version: 2 })).toEqual([
      {
        path: 'version',
        message: '2 means the file was written by a newer MSP Studio; update MSP Studio to open it',
      },
    ]);
    expect(issuesOf({ ...MINIMAL, version: undefined })[0].message).toContain('is missing; add "version": 1');
    expect(issuesOf({ ...MINIMAL, version: '1' })[0].message).toBe('must be 1, got "1"');
    expect(issuesOf({ ...MINIMAL, version: 0 })[0].message).toBe('must be 1, got 0');
    expect(issuesOf([1, 2])).toEqual([{ path: '', message: 'must be a JSON object, got a list' }]);
    expect(() => parseGenerationRequest(null)).toThrow(
      'invalid generation request: must be a JSON object, got null',
    );
  });

  it('requireSeed refuses a request without a seed', () => {
    expect(() => parseGenerationRequest(MINIMAL, { requireSeed: true })).toThrow(
      'seed: is missing; a saved request needs the seed it was rendered with',
    );
    expect(parseGenerationRequest(EXAMPLE, { requireSeed: true }).seed).toBe(42);
  });
});

describe('upgradeRequest', () => {
  it('returns a version 1 object unchanged', () => {
    const json = { ...MINIMAL };
    expect(upgradeRequest(json)).toBe(json);
  });
});

describe('steps', () => {
  it('resolves scaffolding fractions to the nearest count', () => {
    expect(scaffoldingStepCount(0.2, 50)).toBe(10);
    expect(scaffoldingStepCount(0.2, 80)).toBe(16);
    expect(scaffoldingStepCount(0.25, 10)).toBe(3); // 2.5 rounds up
    expect(scaffoldingStepCount(0.29, 50)).toBe(15); // 14.4999... in floating point
    expect(scaffoldingStepCount(12, 50)).toBe(12);
    expect(scaffoldingStepCount(0, 50)).toBe(0);
  });

  it('plans stages and SAL steps', () => {
    const r = parseGenerationRequest(
      withChanges({ scaffoldingSteps: 0.2, sal: { weight: 1, start: 0, end: 0.5, every: 5 } }),
    );
    expect(planSteps(r)).toEqual({
      steps: 50,
      globalDiffuserSteps: 2,
      scaffoldingSteps: 10,
      harmonizationSteps: 38,
      salSteps: [0, 5, 10, 15, 20],
    });
    const range = planSteps({ ...r, steps: 10, sal: { weight: 0.5, start: 0.3, end: 0.6, every: 1 } });
    expect(range.salSteps).toEqual([3, 4, 5]);
    expect(planSteps({ ...r, sal: { ...r.sal, weight: 0 } }).salSteps).toEqual([]);
    expect(planSteps({ ...r, sal: { weight: 1, start: 0, end: 1, every: 1 } }).salSteps).toHaveLength(50);
  });

  it('the paper presets are valid requests', () => {
    expect(Object.keys(PAPER_PRESETS)).toEqual(['scaffoldImage', 'noScaffold', 'controlnet']);
    for (const preset of Object.values(PAPER_PRESETS)) {
      const r = parseGenerationRequest({ ...EXAMPLE, ...preset.settings });
      const plan = planSteps(r);
      expect(plan.globalDiffuserSteps + plan.scaffoldingSteps).toBeLessThanOrEqual(plan.steps);
      expect(preset.label).not.toBe('');
    }
    expect(PAPER_PRESETS.scaffoldImage.settings).toMatchObject({ steps: 80, globalDiffuserSteps: 8 });
    expect(PAPER_PRESETS.noScaffold.settings).toMatchObject({ steps: 80, globalDiffuserSteps: 2 });
    expect(PAPER_PRESETS.controlnet.settings).toMatchObject({ steps: 50, globalDiffuserSteps: 2 });
  });
});

describe('checkSize', () => {
  it('accepts multiples of the VAE factor and absent sizes', () => {
    expect(() => checkSize({ width: 512, height: 768 }, 8)).not.toThrow();
    expect(() => checkSize({}, 8)).not.toThrow();
  });

  it('names each bad side with the nearest valid sizes', () => {
    let error: RequestError | undefined;
    try {
      checkSize({ width: 500, height: 4 }, 8);
    } catch (e) {
      error = e as RequestError;
    }
    expect(error).toBeInstanceOf(RequestError);
    expect(error!.issues).toEqual([
      { path: 'width', message: "500 is not a multiple of 8 (the model's VAE scale factor); use 496 or 504" },
      { path: 'height', message: "4 is not a multiple of 8 (the model's VAE scale factor); use 8" },
    ]);
  });
});

describe('withSeed', () => {
  const request = parseGenerationRequest(MINIMAL);

  it('draws a seed from the given generator, reproducibly, without changing the input', () => {
    const a = withSeed(request, new Rng(7));
    const b = withSeed(request, new Rng(7));
    expect(a.seed).toBe(b.seed);
    expect(Number.isInteger(a.seed) && a.seed >= 0 && a.seed < 2 ** 32).toBe(true);
    expect(request.seed).toBeUndefined();
  });

  it('keeps an existing seed and draws a random one by default', () => {
    expect(withSeed({ ...request, seed: 5 }, new Rng(1)).seed).toBe(5);
    const seed = withSeed(request).seed;
    expect(Number.isInteger(seed) && seed >= 0 && seed < 2 ** 32).toBe(true);
  });

  it('rejects a broken seed source', () => {
    expect(() => withSeed(request, { nextUint32: () => -1 })).toThrow(RangeError);
  });
});

describe('serializeGenerationRequest', () => {
  it('writes every field in a stable order and round-trips', () => {
    const r = parseGenerationRequest(EXAMPLE) as GenerationRequest & { seed: number };
    const text = serializeGenerationRequest(r);
    expect(text.endsWith('}\n')).toBe(true);
    expect(Object.keys(JSON.parse(text) as object)).toEqual([
      'version',
      'prompt',
      'negativePrompt',
      'backgroundPrompt',
      'segmentMap',
      'backgroundColor',
      'segments',
      'pose',
      'scaffolding',
      'steps',
      'scheduler',
      'guidanceScale',
      'scaffoldingSteps',
      'globalDiffuserSteps',
      'globalDiffuserWeight',
      'controlnetScale',
      'sal',
      'seed',
      'width',
      'height',
    ]);
    expect(parseGenerationRequest(JSON.parse(text))).toEqual(r);
    // The same request built with keys in another order serializes identically.
    const shuffled = Object.fromEntries(Object.entries(r).reverse()) as typeof r;
    expect(serializeGenerationRequest(shuffled)).toBe(text);
  });

  it('omits absent optional fields and refuses a request without a seed', () => {
    const r = parseGenerationRequest(MINIMAL);
    expect(() => serializeGenerationRequest(r as GenerationRequest & { seed: number })).toThrow(
      /seed: is missing/,
    );
    const saved = JSON.parse(serializeGenerationRequest(withSeed(r, new Rng(3)))) as Record<string, unknown>;
    expect(saved).not.toHaveProperty('pose');
    expect(saved).not.toHaveProperty('width');
    expect(saved.sal).toEqual(REQUEST_DEFAULTS.sal);
  });
});

describe('resolveScene', () => {
  let dir: string;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'msp-scene-'));
    const png = await sharp({ create: { width: 8, height: 8, channels: 4, background: '#ff0000' } })
      .png()
      .toBuffer();
    await writeFile(join(dir, 'segments.png'), png);
    await mkdir(join(dir, 'refs'));
    await writeFile(join(dir, 'refs', 'scaffold.png'), png);
  });

  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  async function writeScene(name: string, json: unknown): Promise<string> {
    const path = join(dir, name);
    await writeFile(path, typeof json === 'string' ? json : JSON.stringify(json));
    return path;
  }

  it('reads a scene and resolves relative and absolute paths', async () => {
    const path = await writeScene('scene.json', {
      ...MINIMAL,
      scaffolding: { image: 'refs/scaffold.png' },
      pose: join(dir, 'segments.png'),
    });
    const scene = await resolveScene(path);
    expect(scene.baseDir).toBe(dir);
    expect(scene.request.segmentMap).toBe('segments.png');
    expect(scene.files).toEqual({
      segmentMap: join(dir, 'segments.png'),
      pose: join(dir, 'segments.png'),
      scaffoldImage: join(dir, 'refs', 'scaffold.png'),
    });
  });

  it('names every missing file by field and path', async () => {
    const path = await writeScene('missing.json', { ...MINIMAL, segmentMap: 'nope.png', pose: 'pose.json' });
    const error = await resolveScene(path).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(RequestError);
    const e = error as RequestError;
    expect(e.source).toBe(path);
    expect(e.issues.map((i) => i.path)).toEqual(['segmentMap', 'pose']);
    expect(e.issues[0].message).toBe(`"nope.png" not found (looked for ${join(dir, 'nope.png')})`);
    expect(e.message).toContain(`${path}: invalid scene (2 problems): segmentMap: "nope.png" not found`);
  });

  it('reports a folder given as a file', async () => {
    const path = await writeScene('folder.json', { ...MINIMAL, segmentMap: 'refs' });
    await expect(resolveScene(path)).rejects.toThrow('segmentMap: "refs" is not a file');
  });

  it('reports invalid JSON and invalid requests with the scene path', async () => {
    const bad = await writeScene('bad.json', '{"version": 1,');
    await expect(resolveScene(bad)).rejects.toThrow(
      new RegExp(`^${bad.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}: invalid scene: not valid JSON`),
    );
    const invalid = await writeScene('invalid.json', { ...MINIMAL, steps: 0 });
    await expect(resolveScene(invalid)).rejects.toThrow(
      `${invalid}: invalid scene: steps: must be at least 1, got 0`,
    );
  });

  it('reports a missing scene file', async () => {
    await expect(resolveScene(join(dir, 'absent.json'))).rejects.toThrow(
      `cannot read scene file ${join(dir, 'absent.json')}: file not found`,
    );
  });
});
