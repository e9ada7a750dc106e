import { describe, expect, it } from 'vitest';

import { RNG_ALGORITHM, Rng } from './random.js';
import type { RngState } from './random.js';

/**
 * Independent BigInt model of the algorithm in random.ts's header (separate code path from the
 * Math.imul implementation), used to cross-check long streams.
 */
function referenceUint32Stream(seed: number, count: number): number[] {
  const M = 0xffffffffn;
  const fmix = (z0: bigint): bigint => {
    let z = z0;
    z = ((z ^ (z >> 16n)) * 0x85ebca6bn) & M;
    z = ((z ^ (z >> 13n)) * 0xc2b2ae35n) & M;
    return z ^ (z >> 16n);
  };
  const rotl = (x: bigint, k: bigint): bigint => ((x << k) | (x >> (32n - k))) & M;
  const big = BigInt(seed);
  let x = big & M;
  const hi = big >> 32n;
  const next = (): bigint => {
    x = (x + 0x9e3779b9n) & M;
    return fmix(x);
  };
  let s0 = next();
  let s1 = next();
  x ^= hi;
  let s2 = next();
  let s3 = next();
  const out: number[] = [];
  for (let i = 0; i < count; i++) {
    out.push(Number((rotl((s1 * 5n) & M, 7n) * 9n) & M));
    const t = (s1 << 9n) & M;
    s2 ^= s0;
    s3 ^= s1;
    s1 ^= s2;
    s0 ^= s3;
    s2 ^= t;
    s3 = rotl(s3, 11n);
  }
  return out;
}

function take(rng: Rng, n: number, f: (r: Rng) => number): number[] {
  return Array.from({ length: n }, () => f(rng));
}

describe('Rng', () => {
  it('pins the first uint32 outputs of seed 42 (regression vector)', () => {
    // Computed once with an independent Python implementation of the documented algorithm and
    // with referenceUint32Stream below; any change to seeding or the generator must fail here.
    const rng = new Rng(42);
    expect(take(rng, 5, (r) => r.nextUint32())).toEqual([
      2837322924, 544945897, 479756282, 3500138142, 339756180,
    ]);
    expect(new Rng(42).getState().s).toEqual([939911724, 3948730756, 321366731, 3317318717]);
  });

  it('pins the first normals and floats of seed 42', () => {
    const rng = new Rng(42);
    const n = take(rng, 4, (r) => r.normal());
    const expected = [0.6362302295778758, 0.6514422658741048, 0.8308018979688013, -1.9218767348158754];
    for (let i = 0; i < 4; i++) expect(n[i]).toBeCloseTo(expected[i], 14);
    expect(take(new Rng(42), 3, (r) => r.nextFloat())).toEqual([
      0.6606156826019287, 0.12688004970550537, 0.11170190572738647,
    ]);
  });

  it('implements xoshiro128** exactly (reference vector for state 1, 2, 3, 4)', () => {
    const rng = Rng.fromState({ algorithm: RNG_ALGORITHM, s: [1, 2, 3, 4], cachedNormal: null });
    expect(take(rng, 5, (r) => r.nextUint32())).toEqual([11520, 0, 5927040, 70819200, 2031721883]);
  });

  it('matches an independent BigInt model over long streams, including seeds >= 2^32', () => {
    for (const seed of [
      0,
      1,
      42,
      0x61c88647,
      2 ** 32 - 1,
      2 ** 32,
      2 ** 32 + 1,
      123456789012345,
      2 ** 53 - 1,
    ]) {
      const rng = new Rng(seed);
      expect(take(rng, 2000, (r) => r.nextUint32())).toEqual(referenceUint32Stream(seed, 2000));
    }
  });

  it('is deterministic: same seed, same sequence; different seeds differ', () => {
    const a = new Rng(1234).randn(1000);
    const b = new Rng(1234).randn(1000);
    expect(Array.from(a)).toEqual(Array.from(b));
    const seeds = [0, 1, 2, 3, 1234, 2 ** 32, 2 ** 32 + 1, 2 ** 53 - 1];
    const firsts = seeds.map((s) => take(new Rng(s), 4, (r) => r.nextUint32()).join(','));
    expect(new Set(firsts).size).toBe(seeds.length);
    const c = new Rng(1235).randn(1000);
    expect(Array.from(c)).not.toEqual(Array.from(a));
  });

  it('nextFloat is in [0, 1) with 24-bit resolution and exactly representable in float32', () => {
    const rng = new Rng(7);
    for (let i = 0; i < 10000; i++) {
      const u = rng.nextFloat();
      expect(u >= 0 && u < 1).toBe(true);
      expect(Math.fround(u)).toBe(u);
      expect(Number.isInteger(u * 2 ** 24)).toBe(true);
    }
  });

  it('produces a flat uniform histogram', () => {
    const rng = new Rng(2024);
    const bins = new Array<number>(100).fill(0);
    const n = 1_000_000;
    for (let i = 0; i < n; i++) bins[Math.floor(rng.nextFloat() * 100)]++;
    const expected = n / 100;
    let chi2 = 0;
    for (const c of bins) {
      expect(Math.abs(c - expected)).toBeLessThan(600); // ~6 standard deviations
      chi2 += (c - expected) ** 2 / expected;
    }
    // chi-square with 99 degrees of freedom: mean 99, sd 14; 180 is far in the tail.
    expect(chi2).toBeLessThan(180);
  });

  it('normals have mean 0 and std 1 (1e6 samples)', () => {
    const x = new Rng(99).randn(1_000_000);
    let sum = 0;
    let sumSq = 0;
    for (const v of x) {
      sum += v;
      sumSq += v * v;
    }
    const mean = sum / x.length;
    const std = Math.sqrt(sumSq / x.length - mean * mean);
    expect(Math.abs(mean)).toBeLessThan(0.005);
    expect(Math.abs(std - 1)).toBeLessThan(0.005);
    expect(x.every((v) => Number.isFinite(v))).toBe(true);
  });

  it('fillNormal applies mean and std in place and returns the same array', () => {
    const out = new Float32Array(4);
    const ret = new Rng(5).fillNormal(out, 10, 2);
    expect(ret).toBe(out);
    const plain = new Rng(5).randn(4);
    for (let i = 0; i < 4; i++) expect(out[i]).toBeCloseTo(10 + 2 * plain[i], 5);
  });

  it('saves and restores state mid-stream, including a cached Box-Muller value', () => {
    const rng = new Rng(31337);
    rng.randn(11); // odd count: the second normal of the last pair is cached
    rng.nextUint32();
    const state = rng.getState();
    expect(state.cachedNormal).not.toBeNull();
    const json = JSON.stringify(state);
    const expected = [rng.normal(), rng.normal(), rng.normal(), rng.nextUint32(), rng.normal()];

    const restored = Rng.fromState(JSON.parse(json) as RngState);
    expect([
      restored.normal(),
      restored.normal(),
      restored.normal(),
      restored.nextUint32(),
      restored.normal(),
    ]).toEqual(expected);

    const other = new Rng(1);
    other.setState(state);
    expect(other.normal()).toBe(expected[0]);
  });

  it('getState returns a snapshot that later draws do not change', () => {
    const rng = new Rng(3);
    const state = rng.getState();
    const copy = JSON.stringify(state);
    rng.randn(10);
    expect(JSON.stringify(state)).toBe(copy);
    expect(state.cachedNormal).toBeNull();
  });

  it('rejects bad seeds with a RangeError naming the value', () => {
    for (const bad of [-1, 1.5, Number.NaN, Infinity, 2 ** 53, -0.5]) {
      expect(() => new Rng(bad)).toThrow(RangeError);
      expect(() => new Rng(bad)).toThrow(String(bad));
    }
    expect(() => new Rng('7' as unknown as number)).toThrow(RangeError);
    expect(() => new Rng(2 ** 53 - 1)).not.toThrow();
    expect(() => new Rng(0)).not.toThrow();
  });

  it('rejects malformed states', () => {
    const good = new Rng(1).getState();
    const bad: unknown[] = [
      null,
      { ...good, algorithm: 'mt19937' },
      { ...good, s: [1, 2, 3] },
      { ...good, s: [1, 2, 3, -1] },
      { ...good, s: [1, 2, 3, 2 ** 32] },
      { ...good, s: [0, 0, 0, 0] },
      { ...good, cachedNormal: 'x' },
      { ...good, cachedNormal: Infinity },
    ];
    for (const b of bad) expect(() => Rng.fromState(b as RngState)).toThrow(TypeError);
  });

  it('randn validates its length', () => {
    expect(() => new Rng(1).randn(-1)).toThrow(RangeError);
    expect(new Rng(1).randn(0).length).toBe(0);
  });
});
