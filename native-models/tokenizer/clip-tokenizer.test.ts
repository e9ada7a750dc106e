import { sharedData } from '../../test/helpers/shared-data.js';
import { existsSync } from 'node:fs';
import { copyFile, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  CLIPTokenizer,
  buildByteLevelVocab,
  bytesToUnicode,
  cleanText,
  htmlUnescape,
  learnBpeMerges,
  preTokenize,
  writeTokenizerFolder,
} from './clip-tokenizer.js';

const REAL_DIR = sharedData('clip-tokenizer');
const hasReal =
  existsSync(path.join(REAL_DIR, 'vocab.json')) && existsSync(path.join(REAL_DIR, 'merges.txt'));
if (!hasReal) {
  console.warn(
    `[clip-tokenizer.test] ${REAL_DIR} (vocab.json + merges.txt) not found: ` +
      'skipping the tests that need the real CLIP ViT-L/14 vocabulary',
  );
}
const itReal = it.skipIf(!hasReal);

const BOS = 49406;
const EOS = 49407;

let tmpRoot: string;
let real: CLIPTokenizer;

beforeAll(async () => {
  tmpRoot = await mkdtemp(path.join(os.tmpdir(), 'clip-tokenizer-test-'));
  if (hasReal) real = await CLIPTokenizer.fromFolder(REAL_DIR);
});

afterAll(async () => {
  if (tmpRoot) await rm(tmpRoot, { recursive: true, force: true });
});

let dirCounter = 0;
async function tempDir(): Promise<string> {
  const dir = path.join(tmpRoot, `case-${dirCounter++}`);
  await mkdir(dir, { recursive: true });
  return dir;
}

/** Text ids of encode() without the start/end tokens. */
function textIds(tok: CLIPTokenizer, text: string): number[] {
  return [...tok.encode(text, { truncation: false }).ids].slice(1, -1);
}

describe('bytesToUnicode', () => {
  it('is the reversible GPT-2/CLIP table in vocabulary order', () => {
    const table = bytesToUnicode();
    expect(table.size).toBe(256);
    expect(new Set(table.values()).size).toBe(256);
    expect([...table.keys()][0]).toBe(0x21); // '!' is id 0 in CLIP's vocab
    expect(table.get(0x41)).toBe('A');
    expect(table.get(0xe9)).toBe('é');
    expect(table.get(0x00)).toBe('\u0100');
    expect(table.get(0x20)).toBe('\u0120'); // 'Ġ': 33rd non-printable byte
    expect(table.get(0x7f)).toBe('\u0121');
    expect(table.get(0x9f)).toBe('\u0141'); // 'Ł'
    expect(table.get(0xad)).toBe('\u0143'); // soft hyphen is the last non-printable byte
  });
});

describe('text cleanup', () => {
  it('unescapes HTML like Python html.unescape (applied twice)', () => {
    expect(htmlUnescape('fish &amp; chips &#8212; &#x1F600;')).toBe('fish & chips — 😀');
    expect(htmlUnescape('&lt;b&gt; &quot;q&quot; &#39;a&#39; &apos;')).toBe("<b> \"q\" 'a' '");
    expect(htmlUnescape('&amp &copy 2024 &copyright &notit; &eacutex')).toBe('& © 2024 ©right ¬it; éx');
    expect(htmlUnescape('&#128; &#0; &#x110000; &#1; &#65&#66;')).toBe('€ \ufffd \ufffd  AB');
    expect(htmlUnescape('&unknown; & amp; AT&T')).toBe('&unknown; & amp; AT&T');
    expect(htmlUnescape('&amp;amp;')).toBe('&amp;');
    expect(cleanText('&amp;amp;')).toBe('&');
  });

  it('normalizes to NFC, collapses whitespace, trims and lowercases', () => {
    expect(cleanText('  A  Photo\n of &amp;amp; a CAT ')).toBe('a photo of & a cat');
    expect(cleanText('cafe\u0301')).toBe('caf\u00e9');
    expect(cleanText('a\t\r\n b\u00a0c\u3000d\u0085e\u2028f')).toBe('a b c d e f');
    expect(cleanText('\x1c x \x1f')).toBe('x');
    expect(cleanText('ΣΊΣΥΦΟΣ')).toBe('σίσυφος');
  });

  it('pre-tokenizes with the CLIP pattern (each digit separate)', () => {
    expect(preTokenize("don't stop 2024!!")).toEqual(['don', "'t", 'stop', '2', '0', '2', '4', '!!']);
    expect(preTokenize("rock'n'roll ''s")).toEqual(['rock', "'", 'n', "'", 'roll', "''", 's']);
    expect(preTokenize('a<|endoftext|>b 🙂!')).toEqual(['a', '<|endoftext|>', 'b', '🙂!']);
    expect(preTokenize('x²½')).toEqual(['x', '²', '½']);
  });
});

describe('CLIPTokenizer with the real CLIP vocabulary', () => {
  itReal('loads the SD 1.5 tokenizer', () => {
    expect(real.vocabSize).toBe(49408);
    expect(real.bosTokenId).toBe(BOS);
    expect(real.eosTokenId).toBe(EOS);
    expect(real.padTokenId).toBe(EOS);
    expect(real.unkTokenId).toBe(EOS);
    expect(real.modelMaxLength).toBe(77);
    expect(real.tokenToId('cat</w>')).toBe(2368);
    expect(real.idToToken(2368)).toBe('cat</w>');
    expect(real.idToToken(49408)).toBeUndefined();
    expect(real.idToToken(-1)).toBeUndefined();
  });

  itReal('encodes "a photo of a cat" like the reference tokenizer', () => {
    const { ids, attentionMask, tokenCount, truncated } = real.encode('a photo of a cat');
    expect([...ids]).toEqual([49406, 320, 1125, 539, 320, 2368, 49407]);
    expect([...attentionMask]).toEqual([1, 1, 1, 1, 1, 1, 1]);
    expect(tokenCount).toBe(7);
    expect(truncated).toBe(false);
    expect(real.tokenize('a photo of a cat')).toEqual(['a</w>', 'photo</w>', 'of</w>', 'a</w>', 'cat</w>']);
  });

  // Derivations (ranks are 0-based lines of merges.txt after the #version header):
  // - digits: '0'..'9' are bytes 0x30..0x39 = ids 15..24, + 256 for the '</w>' form; each digit is its own
  //   pre-token, so "2024" -> '2</w>' 273, '0</w>' 271, '2</w>' 273, '4</w>' 275.
  // - "don't" -> pieces "don", "'t". don: [d, o, n</w>] -> 'o n</w>' (13) -> [d, on</w>] -> 'd on</w>' (335)
  //   -> don</w> = 847; 't: [', t</w>] -> "' t</w>" (201) -> 't</w> = 713.
  // - "!!!" -> [!, !, !</w>]: '! !</w>' (236) beats '! !' (931) -> [!, !!</w>] -> '! !!</w>' (483) -> !!!</w> = 995.
  // - "café" -> NFC é = C3 A9 -> symbols c a f Ã ©</w>; merges end in 'caf Ã©</w>' (14792) -> 15304.
  // - 🙂 = F0 9F 99 82 -> 'ð' + 'Ł' (0x9F) + 'Ļ' (0x99) + 'Ĥ' (0x82) -> 'ðŁĻĤ</w>' = 14860.
  // - "ß" = C3 9F -> 'Ã' (127) and 'Ł' (253) stay separate pieces inside "straße".
  const cases: [string, string[], number[]][] = [
    ["don't", ['don</w>', "'t</w>"], [847, 713]],
    ['2024', ['2</w>', '0</w>', '2</w>', '4</w>'], [273, 271, 273, 275]],
    ['!!!', ['!!!</w>'], [995]],
    ['A PHOTO Of A Cat', ['a</w>', 'photo</w>', 'of</w>', 'a</w>', 'cat</w>'], [320, 1125, 539, 320, 2368]],
    [
      '  a   photo\n\nof\ta cat \n',
      ['a</w>', 'photo</w>', 'of</w>', 'a</w>', 'cat</w>'],
      [320, 1125, 539, 320, 2368],
    ],
    ['café', ['cafÃ©</w>'], [15304]],
    ['cafe\u0301', ['cafÃ©</w>'], [15304]],
    ['🙂', ['ðŁĻĤ</w>'], [14860]],
    ['cats &amp; dogs', ['cats</w>', '&</w>', 'dogs</w>'], [3989, 261, 3255]],
    ['&amp;amp;', ['&</w>'], [261]],
    ['photorealistic', ['photo', 'realistic</w>'], [1153, 16157]],
    [
      'naïve Straße',
      ['na', 'Ã¯', 've</w>', 'stra', 'Ã', 'Ł', 'e</w>'],
      [1097, 35689, 563, 1894, 127, 253, 324],
    ],
    ['hello<|endoftext|>world', ['hello</w>', '<|endoftext|>', 'world</w>'], [3306, EOS, 1002]],
    [
      'masterpiece, (ultra-detailed:1.2), 8k',
      ['masterpiece</w>', ',</w>', '(</w>', 'ultra</w>', '-</w>', 'detailed</w>', ':</w>', '1</w>', '.</w>'],
      [12066, 267, 263, 8118, 268, 12609, 281, 272, 269],
    ],
  ];
  for (const [text, tokens, ids] of cases) {
    itReal(`tokenizes ${JSON.stringify(text)}`, () => {
      const got = real.tokenize(text);
      expect(got.slice(0, tokens.length)).toEqual(tokens);
      expect(textIds(real, text).slice(0, ids.length)).toEqual(ids);
    });
  }

  itReal('handles a longer sentence with contractions (checked against a reference implementation)', () => {
    const text = "It's the cat's pyjamas, isn't it? We'll see; they'd've LOVED it!!";
    expect(textIds(real, text)).toEqual([
      585, 568, 518, 2368, 568, 4005, 1434, 601, 267, 2923, 713, 585, 286, 649, 1342, 862, 282, 889, 1896,
      1200, 3249, 585, 748,
    ]);
    expect(textIds(real, 'x 🙂 smile 🐱')).toEqual([343, 14860, 3490, 22979]);
  });

  itReal('puts </w> only on the last symbol of each word', () => {
    const words = cleanText('Photorealistic unbelievably gorgeous supercalifragilistic 12345').split(' ');
    for (const word of words) {
      for (const piece of preTokenize(word)) {
        const tokens = real.tokenize(piece);
        expect(tokens.length).toBeGreaterThan(0);
        tokens.forEach((t, i) => expect(t.endsWith('</w>')).toBe(i === tokens.length - 1));
        expect(real.decode(tokens.map((t) => real.tokenToId(t) as number))).toBe(piece);
      }
    }
  });

  itReal('truncates a 100-word prompt to 77 tokens ending with the end token', () => {
    const words = 'knight castle dragon forest river mountain sunset sword armor banner'.split(' ');
    const prompt = Array.from({ length: 100 }, (_, i) => words[i % words.length]).join(' ');
    const full = real.encode(prompt, { truncation: false });
    const out = real.encode(prompt, { maxLength: 77, padding: 'max_length', truncation: true });
    expect(full.ids.length).toBe(102);
    expect(out.ids.length).toBe(77);
    expect(out.ids[0]).toBe(BOS);
    expect(out.ids[76]).toBe(EOS);
    expect([...out.ids.slice(1, 76)]).toEqual([...full.ids.slice(1, 76)]);
    expect(out.truncated).toBe(true);
    expect(out.tokenCount).toBe(102);
    expect(out.tokenCount).toBeGreaterThan(77);
    expect(out.attentionMask.every((m) => m === 1)).toBe(true);
    // Default maxLength is modelMaxLength (77) with truncation on.
    expect(real.encode(prompt).ids.length).toBe(77);
  });

  itReal('pads a short prompt with the pad token and masks the padding', () => {
    const out = real.encode('a photo of a cat', { maxLength: 77, padding: 'max_length' });
    expect(out.ids.length).toBe(77);
    expect(out.attentionMask.length).toBe(77);
    expect([...out.ids.slice(0, 7)]).toEqual([49406, 320, 1125, 539, 320, 2368, 49407]);
    expect(out.ids.slice(7).every((id) => id === real.padTokenId)).toBe(true);
    expect([...out.attentionMask.slice(0, 7)]).toEqual([1, 1, 1, 1, 1, 1, 1]);
    expect(out.attentionMask.slice(7).every((m) => m === 0)).toBe(true);
    expect(out.tokenCount).toBe(7);
    expect(out.truncated).toBe(false);
    expect(real.decode(out.ids)).toBe('a photo of a cat');
  });

  itReal('decode(encode(x)) gives the cleaned text', () => {
    for (const text of [
      'a photo of a cat',
      '  A   Portrait\nOF   a Woman  ',
      'café naïve straße',
      'tom &amp; jerry',
      '日本語 テキスト',
      '🙂 🐱 👩‍👩‍👧',
      "don ' t 2 0 2 4",
    ]) {
      expect(real.decode(real.encode(text).ids)).toBe(cleanText(text));
    }
    // In general, decoding separates the pre-tokens with spaces.
    for (const text of ["Don't stop 2024!!!", 'masterpiece, (ultra-detailed:1.2), 8k', 'x²+y³=z']) {
      expect(real.decode(real.encode(text).ids)).toBe(preTokenize(cleanText(text)).join(' '));
    }
  });

  itReal('decode keeps special tokens on request', () => {
    expect(real.decode([BOS, 320, 2368, EOS], { skipSpecialTokens: false })).toBe(
      '<|startoftext|>a cat <|endoftext|>',
    );
    expect(real.decode([BOS, 320, 2368, EOS, EOS, EOS])).toBe('a cat');
    expect(() => real.decode([1e9])).toThrow(/unknown token id/);
  });

  itReal('reads special tokens and model_max_length from the config files', async () => {
    const dir = await tempDir();
    await copyFile(path.join(REAL_DIR, 'vocab.json'), path.join(dir, 'vocab.json'));
    await copyFile(path.join(REAL_DIR, 'merges.txt'), path.join(dir, 'merges.txt'));
    // SD 2 style: pad "!" (object form in special_tokens_map.json), HF's "unset" model_max_length.
    await writeFile(
      path.join(dir, 'special_tokens_map.json'),
      JSON.stringify({ bos_token: { content: '<|startoftext|>' }, pad_token: { content: '!' } }),
    );
    await writeFile(
      path.join(dir, 'tokenizer_config.json'),
      JSON.stringify({ pad_token: '<|endoftext|>', model_max_length: 1e30, unk_token: null }),
    );
    let tok = await CLIPTokenizer.fromFolder(dir);
    expect(tok.padTokenId).toBe(0);
    expect(tok.padToken).toBe('!');
    expect(tok.modelMaxLength).toBe(77);
    const out = tok.encode('hello!', { maxLength: 8, padding: 'max_length' });
    expect([...out.ids]).toEqual([BOS, 3306, 256, EOS, 0, 0, 0, 0]);
    expect([...out.attentionMask]).toEqual([1, 1, 1, 1, 0, 0, 0, 0]);
    // "!" padding after the end token is dropped; a "!" in the text is kept.
    expect(tok.decode(out.ids)).toBe('hello !');

    await writeFile(path.join(dir, 'tokenizer_config.json'), JSON.stringify({ model_max_length: 64 }));
    tok = await CLIPTokenizer.fromFolder(dir);
    expect(tok.modelMaxLength).toBe(64);
    expect(tok.encode('a cat', { padding: 'max_length' }).ids.length).toBe(64);
  });

  itReal('buildByteLevelVocab reproduces the real vocabulary from the real merges', async () => {
    const lines = (await readFile(path.join(REAL_DIR, 'merges.txt'), 'utf8')).split('\n');
    const merges = lines.slice(1).filter((l) => l !== '');
    const vocab = JSON.parse(await readFile(path.join(REAL_DIR, 'vocab.json'), 'utf8')) as Record<
      string,
      number
    >;
    const built = buildByteLevelVocab(merges);
    expect(Object.keys(built.vocab).length).toBe(Object.keys(vocab).length);
    expect({ ...built.vocab }).toEqual(vocab);
  });

  itReal('is fast: load < 300 ms target, encode well under 1 ms', async () => {
    const t0 = performance.now();
    const tok = await CLIPTokenizer.fromFolder(REAL_DIR);
    const loadMs = performance.now() - t0;
    const words =
      'an epic illustration of a young knight with silver armor on a cliff over a stormy sea'.split(' ');
    const prompt = Array.from(
      { length: 75 },
      (_, i) => words[i % words.length] + (i % 7 === 0 ? 'ish' : ''),
    ).join(' ');
    const t1 = performance.now();
    const first = tok.encode(prompt, { maxLength: 77, padding: 'max_length' });
    const coldMs = performance.now() - t1;
    const runs = 200;
    const t2 = performance.now();
    for (let i = 0; i < runs; i++) tok.encode(prompt, { maxLength: 77, padding: 'max_length' });
    const warmMs = (performance.now() - t2) / runs;
    console.info(
      `[clip-tokenizer] load ${loadMs.toFixed(1)} ms, first encode ${coldMs.toFixed(3)} ms, ` +
        `cached encode ${warmMs.toFixed(4)} ms (${first.tokenCount} tokens)`,
    );
    // Generous bounds so a loaded CI machine does not flake; the printed numbers are the real measurement.
    expect(loadMs).toBeLessThan(1500);
    expect(warmMs).toBeLessThan(1);
  });
});

describe('building, training and saving small tokenizers', () => {
  const corpus = [
    'a red knight rides a horse',
    'the knight holds a red banner',
    'a dragon sleeps in the red mountain',
    'the dragon and the knight meet at dawn',
    'two knights ride horses across the river',
    'a girl with a red scarf reads a book',
    'the girl and the dragon are friends',
    "the knight's horse is tired",
    'sunset over the mountain river, 2 riders',
  ];

  it('learnBpeMerges is deterministic, merges the most frequent pair and breaks ties lexicographically', () => {
    expect(learnBpeMerges(['a cat', 'the cat', 'cats'], 3)).toEqual(['c a', 'ca t</w>', 'ca t']);
    // "ab" x2 and "cd" x2: equal counts, so 'a b</w>' (smaller) comes first.
    expect(learnBpeMerges(['cd ab cd ab'], 2)).toEqual(['a b</w>', 'c d</w>']);
    const m1 = learnBpeMerges(corpus, 60);
    const m2 = learnBpeMerges([...corpus], 60);
    expect(m1).toEqual(m2);
    expect(m1.length).toBe(60);
    expect(new Set(m1).size).toBe(60);
    // Stops when every word is a single symbol.
    expect(learnBpeMerges(['aa'], 10)).toEqual(['a a</w>']);
    expect(learnBpeMerges([], 10)).toEqual([]);
    expect(() => learnBpeMerges(corpus, -1)).toThrow(RangeError);
  });

  it('buildByteLevelVocab lays out bytes, bytes</w>, merges, extras, then start/end', () => {
    const { vocab, merges } = buildByteLevelVocab(
      ['c a', 'ca t</w>', 'c a'],
      ['<pad>', 'cat</w>', '<|endoftext|>'],
    );
    expect(merges).toEqual(['c a', 'ca t</w>', 'c a']);
    expect(vocab['!']).toBe(0);
    expect(vocab['Ń']).toBe(255);
    expect(vocab['!</w>']).toBe(256);
    expect(vocab['Ń</w>']).toBe(511);
    expect(vocab['ca']).toBe(512);
    expect(vocab['cat</w>']).toBe(513);
    expect(vocab['<pad>']).toBe(514);
    expect(vocab['<|startoftext|>']).toBe(515);
    expect(vocab['<|endoftext|>']).toBe(516);
    expect(Object.keys(vocab).length).toBe(517);
    expect(() => buildByteLevelVocab(['ab c'])).toThrow(
      /neither a byte symbol nor the result of an earlier merge/,
    );
    expect(() => buildByteLevelVocab(['a  b'])).toThrow(/malformed/);
  });

  it('learns, writes, reloads and round-trips a tiny tokenizer', async () => {
    const learned = learnBpeMerges(corpus, 80);
    const { vocab, merges } = buildByteLevelVocab(learned);
    const dir = path.join(await tempDir(), 'nested', 'tokenizer');
    await writeTokenizerFolder(dir, { vocab, merges, modelMaxLength: 24 });

    const mergesText = await readFile(path.join(dir, 'merges.txt'), 'utf8');
    expect(mergesText.split('\n')[0]).toBe('#version: 0.2');
    const config = JSON.parse(await readFile(path.join(dir, 'tokenizer_config.json'), 'utf8')) as Record<
      string,
      unknown
    >;
    expect(config).toMatchObject({
      model_max_length: 24,
      tokenizer_class: 'CLIPTokenizer',
      bos_token: '<|startoftext|>',
      eos_token: '<|endoftext|>',
      pad_token: '<|endoftext|>',
      unk_token: '<|endoftext|>',
    });
    expect(Object.keys(config.added_tokens_decoder as object)).toEqual([
      String(vocab['<|startoftext|>']),
      String(vocab['<|endoftext|>']),
    ]);
    const specialMap = JSON.parse(
      await readFile(path.join(dir, 'special_tokens_map.json'), 'utf8'),
    ) as Record<string, { content: string }>;
    expect(specialMap.bos_token.content).toBe('<|startoftext|>');
    expect(specialMap.pad_token.content).toBe('<|endoftext|>');

    const tok = await CLIPTokenizer.fromFolder(dir);
    expect(tok.vocabSize).toBe(Object.keys(vocab).length);
    expect(tok.modelMaxLength).toBe(24);
    expect(tok.bosTokenId).toBe(vocab['<|startoftext|>']);
    expect(tok.eosTokenId).toBe(vocab['<|endoftext|>']);
    expect(tok.padTokenId).toBe(tok.eosTokenId);

    for (const text of corpus) {
      const tokens = tok.tokenize(text);
      const chars = preTokenize(cleanText(text)).join('').length;
      expect(tokens.length).toBeLessThan(chars); // merges compress the training text
      expect(tok.decode(tok.encode(text, { truncation: false }).ids)).toBe(
        preTokenize(cleanText(text)).join(' '),
      );
    }
    // Unseen text (accents, emoji, digits) still round-trips through the byte symbols.
    for (const text of ['Zebra café 🙂 4 2', 'UNSEEN words here']) {
      expect(tok.decode(tok.encode(text, { truncation: false }).ids)).toBe(cleanText(text));
    }
    const padded = tok.encode('a red knight', { padding: 'max_length' });
    expect(padded.ids.length).toBe(24);
    expect(tok.decode(padded.ids)).toBe('a red knight');
  });

  it('writes an SD 2 style pad token', async () => {
    const { vocab, merges } = buildByteLevelVocab(learnBpeMerges(['hi there'], 3));
    const dir = await tempDir();
    await writeTokenizerFolder(dir, { vocab, merges, modelMaxLength: 16, padToken: '!' });
    const config = JSON.parse(await readFile(path.join(dir, 'tokenizer_config.json'), 'utf8')) as {
      added_tokens_decoder: Record<string, { content: string }>;
    };
    expect(config.added_tokens_decoder['0'].content).toBe('!');
    const tok = await CLIPTokenizer.fromFolder(dir);
    expect(tok.padTokenId).toBe(0);
    const out = tok.encode('hi!', { padding: 'max_length' });
    expect(out.ids.length).toBe(16);
    expect(tok.decode(out.ids)).toBe('hi !');
    await expect(
      writeTokenizerFolder(dir, { vocab, merges, modelMaxLength: 16, padToken: '<pad>' }),
    ).rejects.toThrow(/no pad token "<pad>"/);
  });

  it('maps pieces missing from the vocabulary to the unknown token', () => {
    const tok = new CLIPTokenizer({ '<|startoftext|>': 0, '<|endoftext|>': 1, 'a</w>': 2, '<unk>': 3 }, [], {
      unkToken: '<unk>',
    });
    expect([...tok.encode('a b a').ids]).toEqual([0, 2, 3, 2, 1]);
    expect(tok.decode([0, 2, 3, 2, 1])).toBe('a a');
    expect(tok.decode([0, 2, 3, 2, 1], { skipSpecialTokens: false })).toBe(
      '<|startoftext|>a <unk>a <|endoftext|>',
    );
    // A special unknown token written in the text is recognised as that token.
    expect([...tok.encode('a<unk>').ids]).toEqual([0, 2, 3, 1]);
  });

  it('supports encode without truncation or padding and validates lengths', () => {
    const { vocab, merges } = buildByteLevelVocab([]);
    const tok = new CLIPTokenizer(new Map(Object.entries(vocab)), merges, {}, 4);
    const long = tok.encode('a b c d e', { truncation: false, padding: 'max_length' });
    expect(long.ids.length).toBe(7);
    expect(long.truncated).toBe(false);
    const cut = tok.encode('a b c d e');
    expect(cut.ids.length).toBe(4);
    expect(tok.decode(cut.ids)).toBe('a b');
    expect(cut.tokenCount).toBe(7);
    expect(() => tok.encode('a', { maxLength: 1 })).toThrow(RangeError);
    expect(() => new CLIPTokenizer(vocab, merges, {}, 1)).toThrow(RangeError);
    expect(tok.encode('').ids).toEqual(new Int32Array([vocab['<|startoftext|>'], vocab['<|endoftext|>']]));
  });
});

describe('errors', () => {
  async function folder(files: Record<string, string>): Promise<string> {
    const dir = await tempDir();
    for (const [name, text] of Object.entries(files)) await writeFile(path.join(dir, name), text);
    return dir;
  }
  const okVocab = JSON.stringify(buildByteLevelVocab(['a b']).vocab);

  it('reports a missing vocab.json or merges.txt', async () => {
    const noVocab = await folder({ 'merges.txt': '#version: 0.2\na b\n' });
    await expect(CLIPTokenizer.fromFolder(noVocab)).rejects.toThrow(
      `missing ${path.join(noVocab, 'vocab.json')}`,
    );
    const noMerges = await folder({ 'vocab.json': okVocab });
    await expect(CLIPTokenizer.fromFolder(noMerges)).rejects.toThrow(
      `missing ${path.join(noMerges, 'merges.txt')}`,
    );
  });

  it('reports invalid JSON and wrong JSON shapes with the file name', async () => {
    let dir = await folder({ 'vocab.json': '{"a": 1,', 'merges.txt': '' });
    await expect(CLIPTokenizer.fromFolder(dir)).rejects.toThrow(
      `${path.join(dir, 'vocab.json')} is not valid JSON`,
    );
    dir = await folder({ 'vocab.json': '["a"]', 'merges.txt': '' });
    await expect(CLIPTokenizer.fromFolder(dir)).rejects.toThrow(/vocab\.json must contain a JSON object/);
    dir = await folder({ 'vocab.json': '{"a": "x"}', 'merges.txt': '' });
    await expect(CLIPTokenizer.fromFolder(dir)).rejects.toThrow(
      /vocab\.json: vocabulary entry "a" has an invalid id/,
    );
    dir = await folder({ 'vocab.json': okVocab, 'merges.txt': 'a b\n', 'tokenizer_config.json': '{oops' });
    await expect(CLIPTokenizer.fromFolder(dir)).rejects.toThrow(
      `${path.join(dir, 'tokenizer_config.json')} is not valid JSON`,
    );
    dir = await folder({
      'vocab.json': okVocab,
      'merges.txt': 'a b\n',
      'special_tokens_map.json': '{"pad_token": 5}',
    });
    await expect(CLIPTokenizer.fromFolder(dir)).rejects.toThrow(
      /special_tokens_map\.json: "pad_token" must be a string/,
    );
  });

  it('reports a malformed merges line with its line number', async () => {
    const dir = await folder({ 'vocab.json': okVocab, 'merges.txt': '#version: 0.2\na b\nab\nc d\n' });
    await expect(CLIPTokenizer.fromFolder(dir)).rejects.toThrow(
      `${path.join(dir, 'merges.txt')}:3: malformed merge rule "ab"`,
    );
    const dir2 = await folder({ 'vocab.json': okVocab, 'merges.txt': 'a b\nx y  z\n' });
    await expect(CLIPTokenizer.fromFolder(dir2)).rejects.toThrow(/merges\.txt:2: malformed/);
    expect(() => new CLIPTokenizer(JSON.parse(okVocab) as Record<string, number>, ['a b', 'ab'])).toThrow(
      /merge rule 1 is malformed/,
    );
  });

  it('reports missing special tokens, naming the vocabulary file', async () => {
    const vocab = buildByteLevelVocab(['a b']).vocab;
    const noStart = { ...vocab };
    delete noStart['<|startoftext|>'];
    let dir = await folder({ 'vocab.json': JSON.stringify(noStart), 'merges.txt': 'a b\n' });
    await expect(CLIPTokenizer.fromFolder(dir)).rejects.toThrow(
      `${path.join(dir, 'vocab.json')} has no start token "<|startoftext|>"`,
    );
    const noEnd = { ...vocab };
    delete noEnd['<|endoftext|>'];
    dir = await folder({ 'vocab.json': JSON.stringify(noEnd), 'merges.txt': 'a b\n' });
    await expect(CLIPTokenizer.fromFolder(dir)).rejects.toThrow(
      /vocab\.json has no end token "<\|endoftext\|>"/,
    );
    dir = await folder({
      'vocab.json': JSON.stringify(vocab),
      'merges.txt': 'a b\n',
      'special_tokens_map.json': JSON.stringify({ pad_token: '<pad>' }),
    });
    await expect(CLIPTokenizer.fromFolder(dir)).rejects.toThrow(
      /vocab\.json has no pad token "<pad>" \(pad_token in .*special_tokens_map\.json\)/,
    );
    expect(() => new CLIPTokenizer(noStart, [])).toThrow(/no start token/);
  });
});
