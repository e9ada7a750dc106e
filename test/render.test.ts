/**
 * `msp render` end to end on the tiny random model: example scenes with 1 to 4 subjects, with and
 * without a scaffold image, with ControlNet and with SAL, each deterministic by seed; bad scenes
 * give one clear error naming the field and write nothing.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { writeExampleScene, type ExampleSceneOptions } from '../native-models/msp/example-scenes.js';
import { readPngText } from '../native-models/image/png.js';
import { cleanupTempDirs, makeTempDir, sharedRandomModel } from './helpers/random-model.js';
import { runMsp as msp } from './helpers/cli.js';

afterAll(cleanupTempDirs);

async function scene(options: ExampleSceneOptions): Promise<{ dir: string; path: string }> {
  const dir = await makeTempDir();
  return { dir, path: await writeExampleScene(dir, options) };
}

const CASES: [string, ExampleSceneOptions][] = [
  ['1 subject', { subjects: 1 }],
  ['2 subjects with a scaffold image', { subjects: 2, scaffold: 'image' }],
  ['3 subjects with ControlNet', { subjects: 3, pose: true }],
  ['4 subjects with SAL', { subjects: 4, sal: 0.5 }],
  ['2 subjects, scaffold color, pose and SAL', { subjects: 2, scaffold: 'color', pose: true, sal: 0.5 }],
];

describe('msp render', () => {
  for (const [name, options] of CASES) {
    it(`renders ${name}, deterministically by seed`, async () => {
      const model = await sharedRandomModel();
      const { dir, path } = await scene(options);
      const a = await msp('render', path, '--model', model, '--json');
      expect(a.stderr).toBe('');
      expect(a.code).toBe(0);
      const first = await readFile(join(dir, 'scene-42.png'));
      const out2 = await makeTempDir();
      expect((await msp('render', path, '--model', model, '--out', out2)).code).toBe(0);
      expect(first.equals(await readFile(join(out2, 'scene-42.png')))).toBe(true);
      const request = JSON.parse(readPngText(first)['msp:request']) as { seed: number; segments: unknown[] };
      expect(request.seed).toBe(42);
      expect(request.segments).toHaveLength(options.subjects);
      expect(JSON.parse(await readFile(join(dir, 'scene-42.json'), 'utf8'))).toEqual(request);
      const report = JSON.parse(a.stdout) as { salLosses: unknown[] };
      if (options.sal) expect(report.salLosses.length).toBeGreaterThan(0);
    });
  }

  it('--compare writes the baselines next to the render', async () => {
    const { dir, path } = await scene({ subjects: 2, pose: true });
    expect((await msp('render', path, '--model', await sharedRandomModel(), '--compare')).code).toBe(0);
    expect((await readdir(dir)).filter((f) => f.endsWith('.png')).sort()).toEqual([
      'scene-42-baseline-controlnet.png',
      'scene-42-baseline-text-to-image.png',
      'scene-42.png',
      'segments.png',
    ]);
  });

  it('refuses bad scenes with one error naming the field, and writes nothing', async () => {
    const model = await sharedRandomModel();
    const cases: [(s: Record<string, unknown>) => void, RegExp][] = [
      [
        (s) => ((s.segments as { color: string }[])[0].color = '#123456'),
        /colors not in the request: #e6194b/,
      ],
      [
        (s) => ((s.segments as { subject?: string }[])[0].subject = 'nobody'),
        /segments\[0\]\.subject: 'nobody' does not exist/,
      ],
      [
        (s) => (s.scaffoldingSteps = 6),
        /scaffoldingSteps \(6\) \+ globalDiffuserSteps \(1\) exceed steps \(6\)/,
      ],
      [(s) => (s.scaffolding = { image: 'missing.png' }), /scaffolding\.image: "missing\.png" not found/],
      [(s) => (s.width = 60), /width: 60 is not a multiple of 8/],
    ];
    for (const [edit, message] of cases) {
      const { dir, path } = await scene({ subjects: 2, sal: 0.5 });
      const json = JSON.parse(await readFile(path, 'utf8')) as Record<string, unknown>;
      edit(json);
      await writeFile(path, JSON.stringify(json));
      const before = (await readdir(dir)).sort();
      const r = await msp('render', path, '--model', model);
      expect(r.code, r.stderr).toBe(2);
      expect(r.stderr).toMatch(message);
      expect(r.stderr.trim().split('\n')).toHaveLength(1);
      expect((await readdir(dir)).sort()).toEqual(before);
    }
  });

  it('refuses an OpenPose image of the wrong size', async () => {
    const { dir, path } = await scene({ subjects: 1 });
    const { encodePng } = await import('../native-models/image/png.js');
    await writeFile(
      join(dir, 'pose.png'),
      await encodePng({ width: 32, height: 32, data: new Uint8Array(32 * 32 * 3) }),
    );
    const json = JSON.parse(await readFile(path, 'utf8')) as Record<string, unknown>;
    await writeFile(path, JSON.stringify({ ...json, pose: 'pose.png' }));
    const r = await msp('render', path, '--model', await sharedRandomModel());
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/pose: the OpenPose image is 32x32, the panel is 64x64/);
  });
});
