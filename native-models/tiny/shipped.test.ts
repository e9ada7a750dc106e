/**
 * The shipped tiny-world weights (native-models/weights/tiny-sd) that exist so far load and
 * behave as their model card says. Stages not trained yet are skipped with a message.
 */
import { describe, expect, it } from 'vitest';
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { CLIPTokenizer } from '../tokenizer/clip-tokenizer.js';
import { generateScene } from '../world/scene.js';
import { Rng } from '../tensor/random.js';

const DIR = join(import.meta.dirname, '..', 'weights', 'tiny-sd');

describe.skipIf(!existsSync(join(DIR, 'tokenizer', 'vocab.json')))('shipped tiny tokenizer', () => {
  it('tokenizes held-out world captions within its sequence length and keeps every identifier one token', async () => {
    const tokenizer = await CLIPTokenizer.fromFolder(join(DIR, 'tokenizer'));
    const rng = new Rng(999);
    for (let i = 0; i < 200; i++) {
      const caption = generateScene(rng, { size: 32 }).caption;
      const encoded = tokenizer.encode(caption);
      expect(encoded.truncated).toBe(false);
      expect(tokenizer.decode(encoded.ids)).toBe(caption.toLowerCase());
    }
    const { identifiers } = JSON.parse(
      await readFile(join(DIR, 'tokenizer', 'rare_tokens.json'), 'utf8'),
    ) as { identifiers: string[] };
    expect(identifiers.length).toBeGreaterThanOrEqual(11);
    for (const t of identifiers) expect(tokenizer.tokenize(`${t} cat`)).toEqual([`${t}</w>`, 'cat</w>']);
  });
});
