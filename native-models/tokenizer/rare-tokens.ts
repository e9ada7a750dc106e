/**
 * Identifier tokens reserved for DreamBooth subjects: short letter strings that never occur in
 * the tiny world's captions (the tiny tokenizer learns each as one token). A model lists the ones
 * it supports in `tokenizer/rare_tokens.json`; this list is the fallback and the recipe's input.
 */
export const RARE_IDENTIFIERS: readonly string[] = Object.freeze([
  'sks',
  'zwx',
  'qlv',
  'bvx',
  'kxq',
  'vjz',
  'pqy',
  'xgw',
  'fzq',
  'jvk',
  'wqz',
  'hxv',
  'zqp',
  'qjd',
  'yxk',
  'vqm',
]);
