/** The README stays true: its scene-file example is a valid request. */
import { describe, expect, it } from 'vitest';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { parseGenerationRequest } from '../native-models/msp/request.js';
import { parseCast } from '../native-models/personalize/cast-file.js';

describe('README', () => {
  it('shows a scene file that parses as a GenerationRequest', async () => {
    const readme = await readFile(join(import.meta.dirname, '..', 'README.md'), 'utf8');
    const section = readme.slice(readme.indexOf('## Scene files'));
    const json = /```json\n([\s\S]*?)```/.exec(section)?.[1];
    expect(json).toBeDefined();
    const request = parseGenerationRequest(JSON.parse(json as string));
    expect(request).toMatchObject({ version: 1, steps: 50, globalDiffuserSteps: 2, scaffoldingSteps: 10 });
  });

  it('shows a cast file that parses', async () => {
    const readme = await readFile(join(import.meta.dirname, '..', 'README.md'), 'utf8');
    const section = readme.slice(readme.indexOf('## Teaching a cast'));
    const json = /```json\n([\s\S]*?)```/.exec(section)?.[1];
    const cast = parseCast(JSON.parse(json as string), 'README');
    expect(cast.subjects.map((s) => s.identifier)).toEqual(['sks', 'zwx']);
  });
});
