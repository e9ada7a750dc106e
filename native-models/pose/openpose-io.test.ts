import { mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { encodePng } from '../image/png.js';
import { readPose, writePoseJson, writePosePng } from './openpose-io.js';
import { OpenPoseFormatError, addPerson, emptyPose, isPoseDocument, renderOpenPose } from './openpose.js';
import type { PoseDocument } from './openpose.js';

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'msp-pose-test-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

const doc = (): PoseDocument => addPerson(emptyPose(96, 64), 'walking', { x: 40.5, y: 60, scale: 50 });

describe('writePoseJson / readPose (JSON)', () => {
  it('round-trips a document through a file', async () => {
    const path = join(dir, 'pose.json');
    await writePoseJson(path, doc());
    const text = await readFile(path, 'utf8');
    expect(text.endsWith('\n')).toBe(true);
    expect(JSON.parse(text)).toMatchObject({ canvas_width: 96, canvas_height: 64 });
    expect(await readPose(path)).toEqual(doc());
    expect(await readdir(dir)).toEqual(['pose.json']);
  });

  it('passes size options on and prefixes errors with the path', async () => {
    const path = join(dir, 'openpose_keypoints.JSON');
    const values = Array.from({ length: 54 }, (_, i) => (i % 3 === 2 ? 1 : 10 + i));
    await writeFile(path, JSON.stringify({ people: [{ pose_keypoints_2d: values }] }));
    const read = await readPose(path, { width: 200, height: 100 });
    expect(isPoseDocument(read) && read.width).toBe(200);

    await writeFile(path, JSON.stringify({ people: [{ pose_keypoints_2d: values.slice(3) }] }));
    const err = await readPose(path, { width: 200, height: 100 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(OpenPoseFormatError);
    expect((err as Error).message).toBe(
      `${path}: person 0: pose_keypoints_2d has 51 numbers; expected 54 (18 COCO keypoints) or 75 (25 BODY_25 keypoints)`,
    );

    await writeFile(path, '{ "people": [');
    await expect(readPose(path)).rejects.toThrow(`${path} is not valid JSON`);
  });
});

describe('readPose (images)', () => {
  it('returns an OpenPose PNG as RGB without a warning', async () => {
    const path = join(dir, 'pose.png');
    const img = renderOpenPose(doc(), 96, 64);
    await writeFile(path, await encodePng(img));
    const warnings: string[] = [];
    const read = await readPose(path, { onWarning: (m) => warnings.push(m) });
    expect(isPoseDocument(read)).toBe(false);
    expect(read).toMatchObject({ width: 96, height: 64 });
    expect((read as { data: Uint8Array }).data).toEqual(img.data);
    expect(warnings).toEqual([]);
  });

  it('warns but still returns an image that is not mostly black', async () => {
    const path = join(dir, 'photo.png');
    await writeFile(
      path,
      await encodePng({ width: 8, height: 8, data: new Uint8Array(8 * 8 * 3).fill(200) }),
    );
    const warnings: string[] = [];
    const read = await readPose(path, { onWarning: (m) => warnings.push(m) });
    expect(read).toMatchObject({ width: 8, height: 8 });
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toMatch(/photo\.png does not look like an OpenPose rendering/);
  });

  it('writes a rendered PNG and rejects unknown extensions', async () => {
    const path = join(dir, 'control.png');
    await writePosePng(path, doc(), { width: 48, height: 32 });
    const read = await readPose(path, { onWarning: () => expect.unreachable() });
    expect((read as { data: Uint8Array }).data).toEqual(renderOpenPose(doc(), 48, 32).data);
    await expect(readPose(join(dir, 'pose.txt'))).rejects.toThrow(
      /cannot read a pose from ".*pose\.txt": use a \.json OpenPose file or an OpenPose image/,
    );
  });
});

describe('layering', () => {
  it('keeps openpose.ts free of imports so the React renderer can use it', async () => {
    const source = await readFile(new URL('./openpose.ts', import.meta.url), 'utf8');
    expect(source).not.toMatch(/^\s*import\s/m);
    expect(source).not.toMatch(/\brequire\(|\bimport\(|\bprocess\.|\bBuffer\b/);
  });
});
