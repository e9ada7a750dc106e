/**
 * CLIP byte-level BPE tokenizer, compatible with the tokenizer that Stable Diffusion 1.x/2.x use
 * (openai/clip-vit-large-patch14, Hugging Face `CLIPTokenizer`).
 *
 * It reads the `tokenizer/` folder of a diffusers model (`vocab.json`, `merges.txt` and, when present,
 * `special_tokens_map.json` / `tokenizer_config.json`) and reproduces the reference pipeline:
 *
 * 1. Text cleanup: HTML-unescape twice (as OpenAI's CLIP does), Unicode NFC, collapse every whitespace
 *    run into one space, trim, lowercase. The reference also runs `ftfy.fix_text` first (repairing
 *    mojibake such as `cafÃ©`, curly-quote oddities, etc.); there is no JavaScript port of ftfy, so text
 *    that ftfy would change can tokenize differently here. Ordinary, well-formed text is unaffected.
 *    Only the HTML 4 named entities (plus `&apos;`) are known, not all 2,231 HTML 5 names.
 * 2. Pre-tokenization with the CLIP pattern (case-insensitive):
 *    `<|startoftext|>|<|endoftext|>|'s|'t|'re|'ve|'m|'ll|'d|\p{L}+|\p{N}|[^\s\p{L}\p{N}]+`
 *    (every digit is its own piece).
 * 3. Each piece's UTF-8 bytes are mapped through the GPT-2/CLIP bytes-to-unicode table, then merged
 *    with BPE, the last symbol carrying the end-of-word marker `</w>`.
 *
 * Besides the tokenizer itself, this module exports helpers to build, train and save small CLIP-style
 * tokenizers ({@link buildByteLevelVocab}, {@link learnBpeMerges}, {@link writeTokenizerFolder}).
 */

import { mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';

/** Options for {@link CLIPTokenizer.encode}. */
export interface TokenizeOptions {
  /** Target sequence length (start and end tokens included). Default: the tokenizer's `modelMaxLength`. */
  maxLength?: number;
  /** `'max_length'` pads with the pad token up to `maxLength`; `'none'` (default) does not pad. */
  padding?: 'max_length' | 'none';
  /**
   * When true (default), sequences longer than `maxLength` keep the start token and the first
   * `maxLength - 2` text tokens, and end with the end token (Hugging Face behaviour).
   */
  truncation?: boolean;
}

/** Result of {@link CLIPTokenizer.encode}. */
export interface TokenizedText {
  /** Token ids: start token, text tokens, end token, then padding if requested. */
  ids: Int32Array;
  /** 1 for real tokens (start/text/end), 0 for padding. Same length as `ids`. */
  attentionMask: Uint8Array;
  /** tokens (incl. start/end) before truncation */
  tokenCount: number;
  /** True when text tokens were dropped to fit `maxLength`. */
  truncated: boolean;
}

/** Special token strings; each defaults as documented on {@link CLIPTokenizer}. */
export interface CLIPSpecialTokens {
  /** Start-of-text token. Default `<|startoftext|>`. */
  bosToken?: string;
  /** End-of-text token. Default `<|endoftext|>`. */
  eosToken?: string;
  /** Padding token. Default: the end token (SD 1.x uses `<|endoftext|>`, SD 2.x uses `!`). */
  padToken?: string;
  /** Token used for pieces that are not in the vocabulary. Default `<|endoftext|>`. */
  unkToken?: string;
}

/** Options for {@link CLIPTokenizer.decode}. */
export interface DecodeOptions {
  /** Drop start/end/unknown/padding tokens (default true). */
  skipSpecialTokens?: boolean;
}

export const DEFAULT_BOS_TOKEN = '<|startoftext|>';
export const DEFAULT_EOS_TOKEN = '<|endoftext|>';
/** CLIP's context length, used when `tokenizer_config.json` gives no usable `model_max_length`. */
export const DEFAULT_MODEL_MAX_LENGTH = 77;
/** `model_max_length` values at or above this are treated as "unset" (HF stores 1e30 for "no limit"). */
const MAX_SANE_MODEL_LENGTH = 100_000;
const END_OF_WORD = '</w>';
/** Cached BPE results; the cache is cleared when it grows past this many words. */
const BPE_CACHE_LIMIT = 100_000;

// ---------------------------------------------------------------------------------------------------
// Byte <-> unicode table
// ---------------------------------------------------------------------------------------------------

/** Bytes that GPT-2/CLIP keep as their own (printable Latin-1) character, in table order. */
function printableBytes(): number[] {
  const out: number[] = [];
  for (let b = 0x21; b <= 0x7e; b++) out.push(b); // '!'..'~'
  for (let b = 0xa1; b <= 0xac; b++) out.push(b); // '¡'..'¬'
  for (let b = 0xae; b <= 0xff; b++) out.push(b); // '®'..'ÿ'
  return out;
}

/**
 * The GPT-2/CLIP reversible byte-to-character table. Printable bytes map to the character with the
 * same code point; the remaining 68 bytes (controls, space, soft hyphen, ...) map to U+0100 + n in
 * byte order. The map iterates in CLIP's vocabulary order (printable bytes first), which is also the
 * order of ids 0..255 in a CLIP vocabulary.
 *
 * @example
 * bytesToUnicode().get(0x41); // 'A'
 * bytesToUnicode().get(0x20); // 'Ġ' (U+0120)
 */
export function bytesToUnicode(): Map<number, string> {
  const printable = printableBytes();
  const isPrintable = new Set(printable);
  const table = new Map<number, string>();
  for (const b of printable) table.set(b, String.fromCharCode(b));
  let n = 0;
  for (let b = 0; b < 256; b++) {
    if (!isPrintable.has(b)) table.set(b, String.fromCharCode(256 + n++));
  }
  return table;
}

const BYTE_TABLE = bytesToUnicode();
/** BYTE_TO_CHAR[b] = the symbol for byte b. */
const BYTE_TO_CHAR: string[] = Array.from({ length: 256 }, (_, b) => BYTE_TABLE.get(b) as string);
const CHAR_TO_BYTE = new Map<string, number>([...BYTE_TABLE].map(([b, c]) => [c, b]));
/** Symbols in vocabulary order (ids 0..255 of a CLIP vocabulary). */
const BYTE_SYMBOLS: string[] = [...BYTE_TABLE.values()];

const utf8Encoder = new TextEncoder();
const utf8Decoder = new TextDecoder('utf-8');

/** Maps a string's UTF-8 bytes to byte symbols. */
function byteEncode(piece: string): string {
  let ascii = true;
  for (let i = 0; i < piece.length; i++) {
    const c = piece.charCodeAt(i);
    if (c < 0x21 || c > 0x7e) {
      ascii = false;
      break;
    }
  }
  if (ascii) return piece; // printable ASCII maps to itself
  let out = '';
  for (const b of utf8Encoder.encode(piece)) out += BYTE_TO_CHAR[b];
  return out;
}

// ---------------------------------------------------------------------------------------------------
// Text cleanup
// ---------------------------------------------------------------------------------------------------

/** Latin-1 entity names for U+00A0..U+00FF in code point order; these also work without `;`. */
const LATIN1_ENTITY_NAMES = (
  'nbsp iexcl cent pound curren yen brvbar sect uml copy ordf laquo not shy reg macr deg plusmn sup2 ' +
  'sup3 acute micro para middot cedil sup1 ordm raquo frac14 frac12 frac34 iquest Agrave Aacute Acirc ' +
  'Atilde Auml Aring AElig Ccedil Egrave Eacute Ecirc Euml Igrave Iacute Icirc Iuml ETH Ntilde Ograve ' +
  'Oacute Ocirc Otilde Ouml times Oslash Ugrave Uacute Ucirc Uuml Yacute THORN szlig agrave aacute ' +
  'acirc atilde auml aring aelig ccedil egrave eacute ecirc euml igrave iacute icirc iuml eth ntilde ' +
  'ograve oacute ocirc otilde ouml divide oslash ugrave uacute ucirc uuml yacute thorn yuml'
).split(' ');

/** Other HTML 4 entities (+ `apos`) as `name hex` pairs; these need a terminating `;`. */
const OTHER_ENTITIES =
  'quot 22 amp 26 apos 27 lt 3c gt 3e QUOT 22 AMP 26 LT 3c GT 3e COPY a9 REG ae ' +
  'OElig 152 oelig 153 Scaron 160 scaron 161 Yuml 178 fnof 192 circ 2c6 tilde 2dc ' +
  'Alpha 391 Beta 392 Gamma 393 Delta 394 Epsilon 395 Zeta 396 Eta 397 Theta 398 Iota 399 Kappa 39a ' +
  'Lambda 39b Mu 39c Nu 39d Xi 39e Omicron 39f Pi 3a0 Rho 3a1 Sigma 3a3 Tau 3a4 Upsilon 3a5 Phi 3a6 ' +
  'Chi 3a7 Psi 3a8 Omega 3a9 alpha 3b1 beta 3b2 gamma 3b3 delta 3b4 epsilon 3b5 zeta 3b6 eta 3b7 ' +
  'theta 3b8 iota 3b9 kappa 3ba lambda 3bb mu 3bc nu 3bd xi 3be omicron 3bf pi 3c0 rho 3c1 sigmaf 3c2 ' +
  'sigma 3c3 tau 3c4 upsilon 3c5 phi 3c6 chi 3c7 psi 3c8 omega 3c9 thetasym 3d1 upsih 3d2 piv 3d6 ' +
  'ensp 2002 emsp 2003 thinsp 2009 zwnj 200c zwj 200d lrm 200e rlm 200f ndash 2013 mdash 2014 ' +
  'lsquo 2018 rsquo 2019 sbquo 201a ldquo 201c rdquo 201d bdquo 201e dagger 2020 Dagger 2021 ' +
  'bull 2022 hellip 2026 permil 2030 prime 2032 Prime 2033 lsaquo 2039 rsaquo 203a oline 203e ' +
  'frasl 2044 euro 20ac image 2111 weierp 2118 real 211c trade 2122 alefsym 2135 larr 2190 uarr 2191 ' +
  'rarr 2192 darr 2193 harr 2194 crarr 21b5 lArr 21d0 uArr 21d1 rArr 21d2 dArr 21d3 hArr 21d4 ' +
  'forall 2200 part 2202 exist 2203 empty 2205 nabla 2207 isin 2208 notin 2209 ni 220b prod 220f ' +
  'sum 2211 minus 2212 lowast 2217 radic 221a prop 221d infin 221e ang 2220 and 2227 or 2228 cap 2229 ' +
  'cup 222a int 222b there4 2234 sim 223c cong 2245 asymp 2248 ne 2260 equiv 2261 le 2264 ge 2265 ' +
  'sub 2282 sup 2283 nsub 2284 sube 2286 supe 2287 oplus 2295 otimes 2297 perp 22a5 sdot 22c5 ' +
  'lceil 2308 rceil 2309 lfloor 230a rfloor 230b lang 27e8 rang 27e9 loz 25ca spades 2660 clubs 2663 ' +
  'hearts 2665 diams 2666';

/** name -> text for entities written with a trailing `;`. */
const NAMED_ENTITIES = new Map<string, string>();
/** Entities that HTML also accepts without the trailing `;` (the legacy set). */
const LEGACY_ENTITIES = new Set<string>([
  'quot',
  'amp',
  'lt',
  'gt',
  'QUOT',
  'AMP',
  'LT',
  'GT',
  'COPY',
  'REG',
]);
LATIN1_ENTITY_NAMES.forEach((name, i) => {
  NAMED_ENTITIES.set(name, String.fromCharCode(0xa0 + i));
  LEGACY_ENTITIES.add(name);
});
{
  const parts = OTHER_ENTITIES.split(' ');
  for (let i = 0; i < parts.length; i += 2) {
    NAMED_ENTITIES.set(parts[i], String.fromCodePoint(parseInt(parts[i + 1], 16)));
  }
}

/** Windows-1252 meanings that HTML gives to the numeric references &#128;..&#159; (and &#0;, &#13;). */
const CP1252_CHARREFS = new Map<number, string>([
  [0x00, '\ufffd'],
  [0x0d, '\r'],
  [0x80, '\u20ac'],
  [0x81, '\x81'],
  [0x82, '\u201a'],
  [0x83, '\u0192'],
  [0x84, '\u201e'],
  [0x85, '\u2026'],
  [0x86, '\u2020'],
  [0x87, '\u2021'],
  [0x88, '\u02c6'],
  [0x89, '\u2030'],
  [0x8a, '\u0160'],
  [0x8b, '\u2039'],
  [0x8c, '\u0152'],
  [0x8d, '\x8d'],
  [0x8e, '\u017d'],
  [0x8f, '\x8f'],
  [0x90, '\x90'],
  [0x91, '\u2018'],
  [0x92, '\u2019'],
  [0x93, '\u201c'],
  [0x94, '\u201d'],
  [0x95, '\u2022'],
  [0x96, '\u2013'],
  [0x97, '\u2014'],
  [0x98, '\u02dc'],
  [0x99, '\u2122'],
  [0x9a, '\u0161'],
  [0x9b, '\u203a'],
  [0x9c, '\u0153'],
  [0x9d, '\x9d'],
  [0x9e, '\u017e'],
  [0x9f, '\u0178'],
]);

/** Code points that a numeric character reference silently drops (controls and non-characters). */
function isDroppedCodePoint(cp: number): boolean {
  return (
    (cp >= 0x01 && cp <= 0x08) ||
    cp === 0x0b ||
    (cp >= 0x0e && cp <= 0x1f) ||
    (cp >= 0x7f && cp <= 0x9f) ||
    (cp >= 0xfdd0 && cp <= 0xfdef) ||
    (cp & 0xfffe) === 0xfffe
  );
}

function numericCharRef(cp: number): string {
  const special = CP1252_CHARREFS.get(cp);
  if (special !== undefined) return special;
  if ((cp >= 0xd800 && cp <= 0xdfff) || cp > 0x10ffff) return '\ufffd';
  if (isDroppedCodePoint(cp)) return '';
  return String.fromCodePoint(cp);
}

const CHARREF = /&(#[0-9]+;?|#[xX][0-9a-fA-F]+;?|[^\t\n\f <&#;]{1,32};?)/g;

function replaceCharRef(match: string, ref: string): string {
  if (ref.startsWith('#')) {
    const hex = ref[1] === 'x' || ref[1] === 'X';
    const digits = ref.slice(hex ? 2 : 1).replace(/;$/, '');
    // Huge values are simply "> 0x10FFFF"; parseFloat-style overflow is harmless here.
    return numericCharRef(parseInt(digits, hex ? 16 : 10));
  }
  const hasSemicolon = ref.endsWith(';');
  const name = hasSemicolon ? ref.slice(0, -1) : ref;
  if (hasSemicolon) {
    const value = NAMED_ENTITIES.get(name);
    if (value !== undefined) return value;
  } else if (LEGACY_ENTITIES.has(name)) {
    return NAMED_ENTITIES.get(name) as string;
  }
  // Longest legacy entity that prefixes the reference, e.g. "&copyright" -> "©right".
  for (let len = ref.length - 1; len > 1; len--) {
    const prefix = ref.slice(0, len);
    if (LEGACY_ENTITIES.has(prefix)) return (NAMED_ENTITIES.get(prefix) as string) + ref.slice(len);
  }
  return match;
}

/**
 * Replaces HTML character references the way Python's `html.unescape` does (named references from
 * the HTML 4 set plus `&apos;`, decimal and hex numeric references, legacy references without `;`).
 *
 * @example
 * htmlUnescape('fish &amp; chips &#8212; &#x1F600;'); // 'fish & chips — 😀'
 */
export function htmlUnescape(text: string): string {
  if (!text.includes('&')) return text;
  return text.replace(CHARREF, replaceCharRef);
}

const WHITESPACE_RUN = /\p{White_Space}+/gu;
const WHITESPACE_CHAR = /\p{White_Space}/u;

/** Trims the characters Python's `str.strip()` removes: Unicode White_Space plus U+001C..U+001F. */
function pythonStrip(text: string): string {
  const isStripped = (ch: string): boolean => {
    const c = ch.charCodeAt(0);
    return (c >= 0x1c && c <= 0x1f) || WHITESPACE_CHAR.test(ch);
  };
  let start = 0;
  let end = text.length;
  while (start < end && isStripped(text[start])) start++;
  while (end > start && isStripped(text[end - 1])) end--;
  return start === 0 && end === text.length ? text : text.slice(start, end);
}

/**
 * CLIP's text cleanup, minus ftfy: HTML-unescape twice, NFC, collapse whitespace runs to one space,
 * trim, lowercase.
 *
 * @example
 * cleanText('  A  Photo\n of &amp;amp; a CAT '); // 'a photo of & a cat'
 */
export function cleanText(text: string): string {
  let t = htmlUnescape(htmlUnescape(text));
  t = t.normalize('NFC');
  t = pythonStrip(t.replace(WHITESPACE_RUN, ' '));
  return t.toLowerCase();
}

function escapeRegExp(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');
}

/** Builds the CLIP pre-tokenization pattern with the given special tokens as leading alternatives. */
function buildPattern(specialTokens: readonly string[]): RegExp {
  const specials = [...new Set(specialTokens)]
    .sort((a, b) => b.length - a.length)
    .map((s) => escapeRegExp(s) + '|')
    .join('');
  return new RegExp(
    `${specials}'s|'t|'re|'ve|'m|'ll|'d|\\p{L}+|\\p{N}|[^\\p{White_Space}\\p{L}\\p{N}]+`,
    'giu',
  );
}

const DEFAULT_PATTERN = buildPattern([DEFAULT_BOS_TOKEN, DEFAULT_EOS_TOKEN]);

/**
 * Splits already-cleaned text into CLIP pre-tokens (see {@link cleanText}).
 *
 * @example
 * preTokenize("don't stop 2024!!"); // ['don', "'t", 'stop', '2', '0', '2', '4', '!!']
 */
export function preTokenize(cleaned: string): string[] {
  return cleaned.match(DEFAULT_PATTERN) ?? [];
}

// ---------------------------------------------------------------------------------------------------
// BPE core
// ---------------------------------------------------------------------------------------------------

/** Whether a merge rule has the form "a b": two non-empty symbols separated by one space. */
function isValidMerge(line: string): boolean {
  const space = line.indexOf(' ');
  return space > 0 && space < line.length - 1 && line.indexOf(' ', space + 1) === -1;
}

/** Splits a merge rule "a b" into its two symbols, or returns undefined when it is malformed. */
function parseMerge(line: string): [string, string] | undefined {
  if (!isValidMerge(line)) return undefined;
  const space = line.indexOf(' ');
  return [line.slice(0, space), line.slice(space + 1)];
}

function mergeKey(a: string, b: string): string {
  return a + ' ' + b; // symbols never contain a space (byte 0x20 maps to 'Ġ')
}

/** Initial BPE symbols of a byte-encoded word: one per character, the last one carrying `</w>`. */
function initialSymbols(word: string): string[] {
  const symbols = word.split('');
  symbols[symbols.length - 1] += END_OF_WORD;
  return symbols;
}

/** Replaces every non-overlapping occurrence (left to right) of the pair (a, b) with a+b. */
function applyMerge(symbols: string[], a: string, b: string): string[] {
  const out: string[] = [];
  const merged = a + b;
  let i = 0;
  while (i < symbols.length) {
    if (i < symbols.length - 1 && symbols[i] === a && symbols[i + 1] === b) {
      out.push(merged);
      i += 2;
    } else {
      out.push(symbols[i]);
      i += 1;
    }
  }
  return out;
}

/** Runs BPE over a byte-encoded word with the given merge ranks. */
function bpeWord(word: string, ranks: ReadonlyMap<string, number>): string[] {
  let symbols = initialSymbols(word);
  while (symbols.length > 1) {
    let bestRank = Infinity;
    let bestIndex = -1;
    for (let i = 0; i < symbols.length - 1; i++) {
      const rank = ranks.get(mergeKey(symbols[i], symbols[i + 1]));
      if (rank !== undefined && rank < bestRank) {
        bestRank = rank;
        bestIndex = i;
      }
    }
    if (bestIndex < 0) break;
    symbols = applyMerge(symbols, symbols[bestIndex], symbols[bestIndex + 1]);
  }
  return symbols;
}

// ---------------------------------------------------------------------------------------------------
// Tokenizer
// ---------------------------------------------------------------------------------------------------

/** Maps already validated (and owned) by fromFolder, which the constructor can adopt without a copy. */
const validatedVocabs = new WeakSet<Map<string, number>>();

function toVocabMap(vocab: Map<string, number> | Record<string, number>): Map<string, number> {
  if (vocab instanceof Map && validatedVocabs.has(vocab)) return vocab;
  const map = new Map<string, number>();
  const add = (token: string, id: unknown): void => {
    if (typeof id !== 'number' || !Number.isSafeInteger(id) || id < 0) {
      throw new Error(`vocabulary entry ${JSON.stringify(token)} has an invalid id ${JSON.stringify(id)}`);
    }
    map.set(token, id);
  };
  if (vocab instanceof Map) {
    for (const [token, id] of vocab) add(token, id);
  } else {
    for (const token of Object.keys(vocab)) add(token, vocab[token]);
  }
  return map;
}

function checkMaxLength(value: number, what: string): void {
  if (!Number.isInteger(value) || value < 2) {
    throw new RangeError(`${what} must be an integer >= 2 (room for the start and end tokens), got ${value}`);
  }
}

/**
 * CLIP BPE tokenizer (Hugging Face `CLIPTokenizer` compatible).
 *
 * @example
 * const tok = await CLIPTokenizer.fromFolder('/models/sd15/tokenizer');
 * tok.tokenize('a photo of a cat'); // ['a</w>', 'photo</w>', 'of</w>', 'a</w>', 'cat</w>']
 * const { ids, attentionMask } = tok.encode('a photo of a cat', { maxLength: 77, padding: 'max_length' });
 * // ids = [49406, 320, 1125, 539, 320, 2368, 49407, 49407, ...] (77 ids), attentionMask = [1 x 7, 0 x 70]
 * tok.decode(ids); // 'a photo of a cat'
 */
export class CLIPTokenizer {
  /** Number of entries in the vocabulary. */
  readonly vocabSize: number;
  readonly bosToken: string;
  readonly eosToken: string;
  readonly padToken: string;
  readonly unkToken: string;
  readonly bosTokenId: number;
  readonly eosTokenId: number;
  readonly padTokenId: number;
  readonly unkTokenId: number;
  /** Default `maxLength` for {@link encode}. */
  readonly modelMaxLength: number;

  private readonly vocab: Map<string, number>;
  private readonly idToTokenTable: (string | undefined)[];
  private readonly ranks: Map<string, number>;
  private readonly pattern: RegExp;
  /** Lower-cased special token text -> token, for special tokens written literally in the text. */
  private readonly literalSpecials: Map<string, string>;
  /** Ids that decode() drops when skipping special tokens. */
  private readonly specialIds: Set<number>;
  /** Whether the pad token is also an ordinary text piece (SD 2's `!`). */
  private readonly padIsOrdinary: boolean;
  private readonly cache = new Map<string, string[]>();

  /**
   * @param vocab token -> id, as in `vocab.json`.
   * @param merges merge rules in rank order, each "a b" (no `#version` header).
   * @param special special token strings (defaults: `<|startoftext|>`, `<|endoftext|>`, pad = end token,
   *   unk = `<|endoftext|>`); all must be in the vocabulary.
   * @param modelMaxLength default sequence length for {@link encode} (default 77).
   * @example
   * const { vocab, merges } = buildByteLevelVocab(['c a', 'ca t</w>']);
   * new CLIPTokenizer(vocab, merges).tokenize('cat'); // ['cat</w>']
   */
  constructor(
    vocab: Map<string, number> | Record<string, number>,
    merges: string[],
    special: CLIPSpecialTokens = {},
    modelMaxLength: number = DEFAULT_MODEL_MAX_LENGTH,
  ) {
    this.vocab = toVocabMap(vocab);
    this.vocabSize = this.vocab.size;
    let maxId = -1;
    for (const id of this.vocab.values()) if (id > maxId) maxId = id;
    this.idToTokenTable = new Array<string | undefined>(maxId + 1);
    for (const [token, id] of this.vocab) this.idToTokenTable[id] = token;

    this.ranks = new Map();
    for (let i = 0; i < merges.length; i++) {
      const line = merges[i];
      if (typeof line !== 'string' || !isValidMerge(line)) {
        throw new Error(`merge rule ${i} is malformed: ${JSON.stringify(line)} (expected "a b")`);
      }
      // Like Hugging Face (a dict built from the list), a repeated rule keeps its last rank.
      this.ranks.set(line, i);
    }

    checkMaxLength(modelMaxLength, 'modelMaxLength');
    this.modelMaxLength = modelMaxLength;

    this.bosToken = special.bosToken ?? DEFAULT_BOS_TOKEN;
    this.eosToken = special.eosToken ?? DEFAULT_EOS_TOKEN;
    this.padToken = special.padToken ?? this.eosToken;
    this.unkToken = special.unkToken ?? DEFAULT_EOS_TOKEN;
    this.bosTokenId = this.requireId(this.bosToken, 'start');
    this.eosTokenId = this.requireId(this.eosToken, 'end');
    this.padTokenId = this.requireId(this.padToken, 'pad');
    this.unkTokenId = this.requireId(this.unkToken, 'unknown');

    // A token is "ordinary" when BPE can produce it from text: a byte symbol (+ </w>) or a merge result.
    const isOrdinary = (token: string): boolean => {
      const base = token.endsWith(END_OF_WORD) ? token.slice(0, -END_OF_WORD.length) : token;
      if (base.length === 1 && CHAR_TO_BYTE.has(base)) return true;
      return merges.some((line) => line.length === token.length + 1 && line.replace(' ', '') === token);
    };
    this.padIsOrdinary = isOrdinary(this.padToken);
    this.specialIds = new Set([this.bosTokenId, this.eosTokenId]);
    if (!isOrdinary(this.unkToken)) this.specialIds.add(this.unkTokenId);
    if (!this.padIsOrdinary) this.specialIds.add(this.padTokenId);

    // Special tokens written literally in the text become that token (HF splits them out first).
    const literal = [this.bosToken, this.eosToken];
    if (this.specialIds.has(this.unkTokenId)) literal.push(this.unkToken);
    if (!this.padIsOrdinary) literal.push(this.padToken);
    this.literalSpecials = new Map(literal.map((token) => [token.toLowerCase(), token]));
    this.pattern = buildPattern(literal);
  }

  private requireId(token: string, role: string): number {
    const id = this.vocab.get(token);
    if (id === undefined) {
      throw new Error(`the vocabulary has no ${role} token ${JSON.stringify(token)}`);
    }
    return id;
  }

  /**
   * Loads a tokenizer from a diffusers `tokenizer/` folder: `vocab.json` and `merges.txt` (required),
   * `special_tokens_map.json` and `tokenizer_config.json` (optional; special tokens, `model_max_length`).
   * Errors name the offending file (and line, for `merges.txt`).
   *
   * @example
   * const tok = await CLIPTokenizer.fromFolder('models/stable-diffusion-v1-5/tokenizer');
   * tok.bosTokenId; // 49406
   */
  static async fromFolder(dir: string): Promise<CLIPTokenizer> {
    const vocabPath = path.join(dir, 'vocab.json');
    const mergesPath = path.join(dir, 'merges.txt');
    const specialPath = path.join(dir, 'special_tokens_map.json');
    const configPath = path.join(dir, 'tokenizer_config.json');

    // Read together, but report failures in file order so the error does not depend on timing.
    const settled = await Promise.allSettled([
      readText(vocabPath, true),
      readText(mergesPath, true),
      readText(specialPath, false),
      readText(configPath, false),
    ]);
    const [vocabText, mergesText, specialText, configText] = settled.map((r) => {
      if (r.status === 'rejected') throw r.reason;
      return r.value;
    });

    const vocabJson = parseJson(vocabPath, vocabText as string);
    if (!isPlainObject(vocabJson)) {
      throw new Error(`CLIP tokenizer: ${vocabPath} must contain a JSON object mapping tokens to ids`);
    }
    let vocab: Map<string, number>;
    try {
      vocab = toVocabMap(vocabJson as Record<string, number>);
    } catch (err) {
      throw new Error(`CLIP tokenizer: ${vocabPath}: ${(err as Error).message}`, { cause: err });
    }
    validatedVocabs.add(vocab);

    const merges = parseMergesFile(mergesPath, mergesText as string);

    // special_tokens_map.json wins over tokenizer_config.json, as in Hugging Face.
    const sources: { file: string; json: Record<string, unknown> }[] = [];
    for (const [file, text] of [
      [specialPath, specialText],
      [configPath, configText],
    ] as const) {
      if (text === undefined) continue;
      const json = parseJson(file, text);
      if (!isPlainObject(json)) throw new Error(`CLIP tokenizer: ${file} must contain a JSON object`);
      sources.push({ file, json });
    }
    const special: CLIPSpecialTokens = {};
    const origin: Record<string, string> = {};
    const keys = [
      ['bosToken', 'bos_token', 'start'],
      ['eosToken', 'eos_token', 'end'],
      ['padToken', 'pad_token', 'pad'],
      ['unkToken', 'unk_token', 'unknown'],
    ] as const;
    for (const [prop, key] of keys) {
      for (const { file, json } of sources) {
        const token = tokenString(file, key, json[key]);
        if (token !== undefined) {
          special[prop] = token;
          origin[prop] = `${key} in ${file}`;
          break;
        }
      }
    }
    const effective: Record<(typeof keys)[number][0], string> = {
      bosToken: special.bosToken ?? DEFAULT_BOS_TOKEN,
      eosToken: special.eosToken ?? DEFAULT_EOS_TOKEN,
      padToken: special.padToken ?? special.eosToken ?? DEFAULT_EOS_TOKEN,
      unkToken: special.unkToken ?? DEFAULT_EOS_TOKEN,
    };
    for (const [prop, , role] of keys) {
      const token = effective[prop];
      if (!vocab.has(token)) {
        const from = origin[prop] ? ` (${origin[prop]})` : ' (the default)';
        throw new Error(`CLIP tokenizer: ${vocabPath} has no ${role} token ${JSON.stringify(token)}${from}`);
      }
    }

    let modelMaxLength = DEFAULT_MODEL_MAX_LENGTH;
    const configured = sources.find((s) => s.file === configPath)?.json.model_max_length;
    if (
      typeof configured === 'number' &&
      Number.isInteger(configured) &&
      configured >= 2 &&
      configured < MAX_SANE_MODEL_LENGTH
    ) {
      modelMaxLength = configured;
    }

    return new CLIPTokenizer(vocab, merges, special, modelMaxLength);
  }

  /**
   * Cleans and splits `text` into BPE tokens, without start/end tokens.
   *
   * @example
   * tok.tokenize("Don't stop 2024!!!"); // ['don</w>', "'t</w>", 'stop</w>', '2</w>', '0</w>', '2</w>', '4</w>', '!!!</w>']
   */
  tokenize(text: string): string[] {
    const pieces = cleanText(text).match(this.pattern);
    const tokens: string[] = [];
    if (!pieces) return tokens;
    for (const piece of pieces) {
      const special = this.literalSpecials.get(piece);
      if (special !== undefined) {
        tokens.push(special);
        continue;
      }
      for (const token of this.bpe(byteEncode(piece))) tokens.push(token);
    }
    return tokens;
  }

  private bpe(word: string): string[] {
    let result = this.cache.get(word);
    if (result === undefined) {
      result = bpeWord(word, this.ranks);
      if (this.cache.size >= BPE_CACHE_LIMIT) this.cache.clear();
      this.cache.set(word, result);
    }
    return result;
  }

  /**
   * Tokenizes `text` into ids: start token, text tokens, end token. With truncation (default on) and a
   * sequence longer than `maxLength`, keeps the start token and the first `maxLength - 2` text tokens and
   * ends with the end token. With `padding: 'max_length'`, pads with {@link padTokenId} up to `maxLength`.
   * Pieces missing from the vocabulary map to {@link unkTokenId}.
   *
   * @example
   * tok.encode('a photo of a cat').ids; // Int32Array [49406, 320, 1125, 539, 320, 2368, 49407]
   * tok.encode('a cat', { maxLength: 6, padding: 'max_length' });
   * // { ids: [49406, 320, 2368, 49407, 49407, 49407], attentionMask: [1, 1, 1, 1, 0, 0], tokenCount: 4, truncated: false }
   */
  encode(text: string, options: TokenizeOptions = {}): TokenizedText {
    const maxLength = options.maxLength ?? this.modelMaxLength;
    const padding = options.padding ?? 'none';
    const truncation = options.truncation ?? true;
    if (truncation || padding === 'max_length') checkMaxLength(maxLength, 'maxLength');

    const tokens = this.tokenize(text);
    const tokenCount = tokens.length + 2;
    const truncated = truncation && tokenCount > maxLength;
    const kept = truncated ? maxLength - 2 : tokens.length;
    const realLength = kept + 2;
    const length = padding === 'max_length' ? Math.max(realLength, maxLength) : realLength;

    const ids = new Int32Array(length);
    const attentionMask = new Uint8Array(length);
    ids[0] = this.bosTokenId;
    for (let i = 0; i < kept; i++) ids[i + 1] = this.vocab.get(tokens[i]) ?? this.unkTokenId;
    ids[kept + 1] = this.eosTokenId;
    attentionMask.fill(1, 0, realLength);
    ids.fill(this.padTokenId, realLength);
    return { ids, attentionMask, tokenCount, truncated };
  }

  /**
   * Turns ids back into text: tokens are joined, each `</w>` becomes a space, byte symbols become UTF-8
   * bytes again (invalid sequences decode to U+FFFD), and the result is trimmed. With `skipSpecialTokens`
   * (default), start/end tokens, a special unknown/pad token and trailing padding after the end token
   * are dropped. Throws on ids that are not in the vocabulary.
   *
   * @example
   * tok.decode([49406, 320, 1125, 539, 320, 2368, 49407]); // 'a photo of a cat'
   * tok.decode([49406, 320, 2368, 49407], { skipSpecialTokens: false }); // '<|startoftext|>a cat <|endoftext|>'
   */
  decode(ids: ArrayLike<number>, { skipSpecialTokens = true }: DecodeOptions = {}): string {
    let end = ids.length;
    if (skipSpecialTokens && this.padIsOrdinary) {
      // Padding with an ordinary token (SD 2's "!") is only recognisable after the end token.
      while (end > 0 && ids[end - 1] === this.padTokenId) end--;
      if (end === 0 || ids[end - 1] !== this.eosTokenId) end = ids.length;
    }
    const bytes: number[] = [];
    for (let i = 0; i < end; i++) {
      const id = ids[i];
      const token = this.idToToken(id);
      if (token === undefined) throw new RangeError(`decode: unknown token id ${id}`);
      if (skipSpecialTokens && this.specialIds.has(id)) continue;
      const endOfWord = token.endsWith(END_OF_WORD);
      const body = endOfWord ? token.slice(0, -END_OF_WORD.length) : token;
      for (const ch of body) {
        const b = CHAR_TO_BYTE.get(ch);
        if (b !== undefined) bytes.push(b);
        else for (const raw of utf8Encoder.encode(ch)) bytes.push(raw);
      }
      if (endOfWord) bytes.push(0x20);
    }
    return pythonStrip(utf8Decoder.decode(new Uint8Array(bytes)));
  }

  /** Id of a vocabulary token (e.g. `'cat</w>'`), or undefined. */
  tokenToId(token: string): number | undefined {
    return this.vocab.get(token);
  }

  /** Vocabulary token of an id, or undefined. */
  idToToken(id: number): string | undefined {
    return Number.isInteger(id) && id >= 0 ? this.idToTokenTable[id] : undefined;
  }
}

// ---------------------------------------------------------------------------------------------------
// File helpers
// ---------------------------------------------------------------------------------------------------

async function readText(file: string, required: boolean): Promise<string | undefined> {
  try {
    return await readFile(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') {
      if (!required) return undefined;
      throw new Error(`CLIP tokenizer: missing ${file}`, { cause: err });
    }
    throw new Error(`CLIP tokenizer: cannot read ${file}: ${(err as Error).message}`, { cause: err });
  }
}

function parseJson(file: string, text: string): unknown {
  try {
    return JSON.parse(text.charCodeAt(0) === 0xfeff ? text.slice(1) : text);
  } catch (err) {
    throw new Error(`CLIP tokenizer: ${file} is not valid JSON: ${(err as Error).message}`, { cause: err });
  }
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** A special token entry: a string, `{ "content": "..." }` (AddedToken), or null/absent. */
function tokenString(file: string, key: string, value: unknown): string | undefined {
  if (value === undefined || value === null) return undefined;
  if (typeof value === 'string') return value;
  if (isPlainObject(value) && typeof value.content === 'string') return value.content;
  throw new Error(`CLIP tokenizer: ${file}: "${key}" must be a string or an object with a "content" string`);
}

function parseMergesFile(file: string, text: string): string[] {
  const lines = text.split(/\r?\n/);
  const merges: string[] = [];
  for (let i = 0; i < lines.length; i++) {
    let line = lines[i];
    if (i === 0) {
      if (line.charCodeAt(0) === 0xfeff) line = line.slice(1);
      if (line.startsWith('#version')) continue;
    }
    if (line.trim() === '') continue;
    if (!parseMerge(line)) {
      throw new Error(
        `CLIP tokenizer: ${file}:${i + 1}: malformed merge rule ${JSON.stringify(line)} ` +
          '(expected two symbols separated by one space)',
      );
    }
    merges.push(line);
  }
  return merges;
}

/** Compares strings by Unicode code point (Python's string order). */
function compareCodePoints(a: string, b: string): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    const ca = a.charCodeAt(i);
    const cb = b.charCodeAt(i);
    if (ca === cb) continue;
    const sa = ca >= 0xd800 && ca <= 0xdfff;
    const sb = cb >= 0xd800 && cb <= 0xdfff;
    if (sa !== sb) return sa ? 1 : -1; // surrogates encode code points above every other BMP unit
    return ca - cb;
  }
  return a.length - b.length;
}

function addedToken(content: string, normalized: boolean): Record<string, unknown> {
  return { content, lstrip: false, normalized, rstrip: false, single_word: false };
}

function jsonFile(value: unknown): string {
  return JSON.stringify(value, null, 2) + '\n';
}

/** Options for {@link writeTokenizerFolder}. */
export interface TokenizerFolderContents {
  vocab: Record<string, number>;
  /** Merge rules in rank order, each "a b". */
  merges: string[];
  modelMaxLength: number;
  /** Padding token (default `<|endoftext|>`); must be in the vocabulary. */
  padToken?: string;
}

/**
 * Writes a Hugging Face `CLIPTokenizer` folder (`vocab.json`, `merges.txt` with a `#version: 0.2`
 * header, `special_tokens_map.json`, `tokenizer_config.json`) that {@link CLIPTokenizer.fromFolder}
 * and `transformers.CLIPTokenizer.from_pretrained` can load. Creates `dir` if needed. The vocabulary
 * must contain `<|startoftext|>` and `<|endoftext|>`.
 *
 * @example
 * const { vocab, merges } = buildByteLevelVocab(learnBpeMerges(captions, 2000));
 * await writeTokenizerFolder('models/tiny/tokenizer', { vocab, merges, modelMaxLength: 32 });
 */
export async function writeTokenizerFolder(dir: string, contents: TokenizerFolderContents): Promise<void> {
  const { vocab, merges, modelMaxLength } = contents;
  const padToken = contents.padToken ?? DEFAULT_EOS_TOKEN;
  // Validates ids, merges, special tokens and the length before anything is written.
  const checked = new CLIPTokenizer(vocab, merges, { padToken }, modelMaxLength);

  const decoderEntries: [number, Record<string, unknown>][] = [
    [checked.bosTokenId, { ...addedToken(checked.bosToken, true), special: true }],
    [checked.eosTokenId, { ...addedToken(checked.eosToken, false), special: true }],
  ];
  if (padToken !== checked.bosToken && padToken !== checked.eosToken) {
    decoderEntries.push([checked.padTokenId, { ...addedToken(padToken, false), special: true }]);
  }
  decoderEntries.sort((x, y) => x[0] - y[0]);
  const addedTokensDecoder: Record<string, unknown> = {};
  for (const [id, entry] of decoderEntries) addedTokensDecoder[String(id)] = entry;

  // Written by hand: a JS object would move integer-like keys ("0".."9") to the front.
  const vocabLines = Object.keys(vocab)
    .sort(compareCodePoints)
    .map((token) => `  ${JSON.stringify(token)}: ${vocab[token]}`);
  const vocabJson = `{\n${vocabLines.join(',\n')}\n}\n`;

  const specialTokensMap = {
    bos_token: addedToken(checked.bosToken, true),
    eos_token: addedToken(checked.eosToken, false),
    pad_token: addedToken(padToken, false),
    unk_token: addedToken(checked.unkToken, false),
  };
  const tokenizerConfig = {
    add_prefix_space: false,
    added_tokens_decoder: addedTokensDecoder,
    bos_token: checked.bosToken,
    clean_up_tokenization_spaces: true,
    do_lower_case: true,
    eos_token: checked.eosToken,
    errors: 'replace',
    model_max_length: modelMaxLength,
    pad_token: padToken,
    tokenizer_class: 'CLIPTokenizer',
    unk_token: checked.unkToken,
  };

  await mkdir(dir, { recursive: true });
  await Promise.all([
    writeFile(path.join(dir, 'vocab.json'), vocabJson, 'utf8'),
    writeFile(path.join(dir, 'merges.txt'), ['#version: 0.2', ...merges].join('\n') + '\n', 'utf8'),
    writeFile(path.join(dir, 'special_tokens_map.json'), jsonFile(specialTokensMap), 'utf8'),
    writeFile(path.join(dir, 'tokenizer_config.json'), jsonFile(tokenizerConfig), 'utf8'),
  ]);
}

// ---------------------------------------------------------------------------------------------------
// Building and training vocabularies
// ---------------------------------------------------------------------------------------------------

/**
 * Builds a CLIP-style vocabulary for the given merge rules: ids 0..255 are the byte symbols (in
 * {@link bytesToUnicode} order), 256..511 the same symbols + `</w>`, then one token per merge result
 * in merge order, then `extraTokens`, then `<|startoftext|>` and `<|endoftext|>` last. Tokens that
 * already exist are not repeated, so ids stay contiguous. For CLIP's own `merges.txt` this reproduces
 * CLIP's `vocab.json` exactly. (As with any JS object, integer-like keys such as "0".."9" enumerate
 * first; the ids are what matter.)
 *
 * Throws when a merge rule is malformed or uses a symbol that is neither a byte symbol nor the
 * result of an earlier merge (such a rule could never apply).
 *
 * @example
 * const { vocab } = buildByteLevelVocab(['c a', 'ca t</w>']);
 * vocab['ca']; // 512
 * vocab['cat</w>']; // 513
 * vocab['<|endoftext|>']; // 515
 */
export function buildByteLevelVocab(
  merges: string[],
  extraTokens: string[] = [],
): { vocab: Record<string, number>; merges: string[] } {
  const vocab = Object.create(null) as Record<string, number>;
  const ids = new Map<string, number>();
  const add = (token: string): void => {
    if (!ids.has(token)) {
      ids.set(token, ids.size);
      vocab[token] = ids.size - 1;
    }
  };
  for (const symbol of BYTE_SYMBOLS) add(symbol);
  for (const symbol of BYTE_SYMBOLS) add(symbol + END_OF_WORD);
  merges.forEach((line, i) => {
    const pair = parseMerge(line);
    if (!pair) throw new Error(`merge rule ${i} is malformed: ${JSON.stringify(line)} (expected "a b")`);
    for (const part of pair) {
      if (!ids.has(part)) {
        throw new Error(
          `merge rule ${i} (${JSON.stringify(line)}) uses ${JSON.stringify(part)}, ` +
            'which is neither a byte symbol nor the result of an earlier merge',
        );
      }
    }
    add(pair[0] + pair[1]);
  });
  const specials = new Set([DEFAULT_BOS_TOKEN, DEFAULT_EOS_TOKEN]);
  for (const token of extraTokens) if (!specials.has(token)) add(token);
  add(DEFAULT_BOS_TOKEN);
  add(DEFAULT_EOS_TOKEN);
  return { vocab, merges: [...merges] };
}

interface HeapEntry {
  count: number;
  a: string;
  b: string;
}

/** Max-heap on count; ties go to the lexicographically smaller pair (a, then b). */
class PairHeap {
  private readonly items: HeapEntry[] = [];

  get size(): number {
    return this.items.length;
  }

  private static before(x: HeapEntry, y: HeapEntry): boolean {
    if (x.count !== y.count) return x.count > y.count;
    if (x.a !== y.a) return x.a < y.a;
    return x.b < y.b;
  }

  push(entry: HeapEntry): void {
    const items = this.items;
    items.push(entry);
    let i = items.length - 1;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (!PairHeap.before(items[i], items[parent])) break;
      [items[i], items[parent]] = [items[parent], items[i]];
      i = parent;
    }
  }

  pop(): HeapEntry | undefined {
    const items = this.items;
    if (items.length === 0) return undefined;
    const top = items[0];
    const last = items.pop() as HeapEntry;
    if (items.length > 0) {
      items[0] = last;
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        const r = l + 1;
        let best = i;
        if (l < items.length && PairHeap.before(items[l], items[best])) best = l;
        if (r < items.length && PairHeap.before(items[r], items[best])) best = r;
        if (best === i) break;
        [items[i], items[best]] = [items[best], items[i]];
        i = best;
      }
    }
    return top;
  }
}

/**
 * Learns up to `numMerges` BPE merge rules from a corpus, using CLIP's cleanup, pre-tokenization and
 * byte symbols (with `</w>` on each word's last symbol), so the result can be fed to
 * {@link buildByteLevelVocab}. Deterministic: each step merges the adjacent pair with the highest
 * frequency over all words (weighted by word count), ties broken by the lexicographically smallest
 * pair. Stops early when no adjacent pairs remain. Literal `<|startoftext|>`/`<|endoftext|>` in the
 * corpus are ignored.
 *
 * @example
 * learnBpeMerges(['a cat', 'the cat', 'cats'], 3); // ['c a', 'ca t</w>', 'ca t']
 */
export function learnBpeMerges(corpus: string[], numMerges: number): string[] {
  if (!Number.isInteger(numMerges) || numMerges < 0) {
    throw new RangeError(`numMerges must be a non-negative integer, got ${numMerges}`);
  }
  // Word frequencies over byte-encoded pre-tokens.
  const wordFreq = new Map<string, number>();
  for (const text of corpus) {
    for (const piece of preTokenize(cleanText(text))) {
      if (piece === DEFAULT_BOS_TOKEN || piece === DEFAULT_EOS_TOKEN) continue;
      const word = byteEncode(piece);
      wordFreq.set(word, (wordFreq.get(word) ?? 0) + 1);
    }
  }
  const words: string[][] = [];
  const freqs: number[] = [];
  for (const [word, freq] of wordFreq) {
    words.push(initialSymbols(word));
    freqs.push(freq);
  }

  const pairCounts = new Map<string, number>();
  /** Word indices that contain (or once contained) each pair. */
  const pairWords = new Map<string, Set<number>>();
  const pairParts = new Map<string, [string, string]>();
  const touched = new Set<string>();

  const addPairs = (w: number, sign: 1 | -1): void => {
    const symbols = words[w];
    for (let i = 0; i < symbols.length - 1; i++) {
      const key = mergeKey(symbols[i], symbols[i + 1]);
      pairCounts.set(key, (pairCounts.get(key) ?? 0) + sign * freqs[w]);
      touched.add(key);
      if (sign > 0) {
        let set = pairWords.get(key);
        if (!set) {
          set = new Set();
          pairWords.set(key, set);
          pairParts.set(key, [symbols[i], symbols[i + 1]]);
        }
        set.add(w);
      }
    }
  };

  const heap = new PairHeap();
  const pushTouched = (): void => {
    for (const key of touched) {
      const count = pairCounts.get(key) ?? 0;
      if (count > 0) {
        const [a, b] = pairParts.get(key) as [string, string];
        heap.push({ count, a, b });
      } else {
        pairCounts.delete(key);
      }
    }
    touched.clear();
  };

  for (let w = 0; w < words.length; w++) addPairs(w, 1);
  pushTouched();

  const merges: string[] = [];
  const learned = new Set<string>();
  while (merges.length < numMerges) {
    const top = heap.pop();
    if (!top) break;
    const key = mergeKey(top.a, top.b);
    if (pairCounts.get(key) !== top.count) continue; // stale entry
    // A pair can reappear when a later merge recreates one of its symbols (e.g. "ab c" and "a bc" both
    // make "abc"); the rule is then applied again but listed once.
    if (!learned.has(key)) {
      learned.add(key);
      merges.push(key);
    }
    const affected = pairWords.get(key) as Set<number>;
    for (const w of affected) {
      const symbols = words[w];
      let present = false;
      for (let i = 0; i < symbols.length - 1; i++) {
        if (symbols[i] === top.a && symbols[i + 1] === top.b) {
          present = true;
          break;
        }
      }
      if (!present) continue;
      addPairs(w, -1);
      words[w] = applyMerge(symbols, top.a, top.b);
      addPairs(w, 1);
    }
    pairWords.delete(key);
    pushTouched();
  }
  return merges;
}
