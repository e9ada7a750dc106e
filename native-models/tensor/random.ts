/**
 * Seeded pseudo-random numbers for deterministic noise (initial latents, ancestral sampling noise,
 * training noise). The exact algorithm is specified here so other implementations can reproduce
 * the streams bit for bit.
 *
 * All arithmetic below is on unsigned 32-bit integers modulo 2^32; `>>>` is a logical right shift,
 * `rotl(x, k)` = `(x << k) | (x >>> (32 - k))`.
 *
 * 1. Seed. An integer `seed` in [0, 2^53 - 1] (any other value throws a RangeError).
 *    lo = seed mod 2^32, hi = floor(seed / 2^32).
 *
 * 2. SplitMix32, used only to expand the seed. State: one 32-bit word `x`. Each output:
 *        x = x + 0x9E3779B9
 *        z = x
 *        z = (z ^ (z >>> 16)) * 0x85EBCA6B
 *        z = (z ^ (z >>> 13)) * 0xC2B2AE35
 *        z = z ^ (z >>> 16)
 *        output z
 *    (the golden-ratio increment of SplitMix and the MurmurHash3 32-bit finalizer.)
 *
 * 3. xoshiro128** state (s0, s1, s2, s3), from one SplitMix32 generator:
 *        x = lo
 *        s0 = output, s1 = output          (outputs 1 and 2)
 *        x = x ^ hi                        (x is lo + 2 * 0x9E3779B9 at this point)
 *        s2 = output, s3 = output
 *    For seeds below 2^32 (hi = 0) this is simply the first four outputs of SplitMix32(lo). The
 *    finalizer is a bijection and outputs 1 and 2 come from distinct inputs, so s0 and s1 are never
 *    both zero (the state is never all-zero); (s0, s1) determine lo and then (s2, s3) determine hi,
 *    so distinct seeds give distinct states.
 *
 * 4. nextUint32() is xoshiro128** (Blackman & Vigna, 2018):
 *        result = rotl(s1 * 5, 7) * 9
 *        t = s1 << 9
 *        s2 ^= s0; s3 ^= s1; s1 ^= s2; s0 ^= s3; s2 ^= t; s3 = rotl(s3, 11)
 *        return result
 *
 * 5. nextFloat() = (nextUint32() >>> 8) / 2^24, in [0, 1) with 24-bit resolution (every value is
 *    exactly representable as a float32, so it survives storage in a Float32Array unchanged).
 *
 * 6. normal() uses the Box-Muller transform and produces values in pairs. When no value is cached:
 *        u1 = (nextUint32() + 1) / 2^32        in (0, 1], so log(u1) is finite
 *        u2 = nextUint32() / 2^32              in [0, 1)
 *        r = sqrt(-2 ln u1), theta = 2 pi u2
 *        return r cos(theta), and cache r sin(theta) for the next call
 *    (u1 is drawn before u2.) The next call returns the cached value and clears the cache. The
 *    cache is part of the saved state. nextUint32()/nextFloat() do not touch the cache, so
 *    interleaving them with normal() draws from the same stream.
 *
 * Reproducibility: steps 1–5 are exact integer/float operations and reproduce bit for bit
 * anywhere. Normals depend on the platform's log/sqrt/cos/sin; in V8 they are deterministic, and
 * another libm gives at most an ulp or so of difference in the double result (almost always none
 * after rounding to float32).
 */

const TWO_POW_32 = 4294967296;
const TWO_POW_NEG_24 = 1 / 16777216;
const TWO_POW_NEG_32 = 1 / TWO_POW_32;
const TWO_PI = 2 * Math.PI;

/** Name of the algorithm, stored in {@link RngState} so states from another generator are rejected. */
export const RNG_ALGORITHM = 'xoshiro128**/splitmix32/box-muller' as const;

/**
 * A complete, JSON-serializable snapshot of an {@link Rng}: restoring it continues the exact same
 * stream (including a cached second Box-Muller normal).
 */
export interface RngState {
  algorithm: typeof RNG_ALGORITHM;
  /** xoshiro128** state words s0..s3, each an unsigned 32-bit integer; not all zero. */
  s: [number, number, number, number];
  /** The cached second normal of the last Box-Muller pair, or null when none is pending. */
  cachedNormal: number | null;
}

function rotl(x: number, k: number): number {
  return (x << k) | (x >>> (32 - k));
}

/** One SplitMix32 output as specified in the file header; advances `state.x`. */
function splitMix32Next(state: { x: number }): number {
  state.x = (state.x + 0x9e3779b9) | 0;
  let z = state.x;
  z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
  z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
  z ^= z >>> 16;
  return z >>> 0;
}

function checkSeed(seed: number): void {
  if (typeof seed !== 'number' || !Number.isSafeInteger(seed) || seed < 0) {
    throw new RangeError(`Rng seed must be an integer in [0, 2^53 - 1]; got ${String(seed)}`);
  }
}

function isUint32(v: unknown): v is number {
  return typeof v === 'number' && Number.isInteger(v) && v >= 0 && v < TWO_POW_32;
}

/** Seeded xoshiro128** generator with Box-Muller normals; see the file header for the exact algorithm. */
export class Rng {
  // State words held as signed 32-bit integers (the same bits as the unsigned words).
  private s0 = 0;
  private s1 = 0;
  private s2 = 0;
  private s3 = 0;
  private cached: number | null = null;

  constructor(seed: number) {
    checkSeed(seed);
    const lo = seed >>> 0;
    const hi = Math.floor(seed / TWO_POW_32);
    const sm = { x: lo | 0 };
    this.s0 = splitMix32Next(sm) | 0;
    this.s1 = splitMix32Next(sm) | 0;
    sm.x ^= hi;
    this.s2 = splitMix32Next(sm) | 0;
    this.s3 = splitMix32Next(sm) | 0;
  }

  /** A generator continuing exactly from `state` (e.g. a training checkpoint). */
  static fromState(state: RngState): Rng {
    const rng = new Rng(0);
    rng.setState(state);
    return rng;
  }

  /** Next unsigned 32-bit integer of the xoshiro128** stream. */
  nextUint32(): number {
    const s1 = this.s1;
    const result = Math.imul(rotl(Math.imul(s1, 5), 7), 9) >>> 0;
    const t = s1 << 9;
    this.s2 ^= this.s0;
    this.s3 ^= s1;
    this.s1 ^= this.s2;
    this.s0 ^= this.s3;
    this.s2 ^= t;
    this.s3 = rotl(this.s3, 11);
    return result;
  }

  /** Uniform float in [0, 1): `(nextUint32() >>> 8) / 2^24`. */
  nextFloat(): number {
    return (this.nextUint32() >>> 8) * TWO_POW_NEG_24;
  }

  /** Standard normal N(0, 1) by Box-Muller (pairs: cos first, sin cached for the next call). */
  normal(): number {
    const pending = this.cached;
    if (pending !== null) {
      this.cached = null;
      return pending;
    }
    const u1 = (this.nextUint32() + 1) * TWO_POW_NEG_32; // (0, 1]
    const u2 = this.nextUint32() * TWO_POW_NEG_32; // [0, 1)
    const r = Math.sqrt(-2 * Math.log(u1));
    const theta = TWO_PI * u2;
    this.cached = r * Math.sin(theta);
    return r * Math.cos(theta);
  }

  /** Fills `out` with `mean + std * normal()` in index order and returns it. */
  fillNormal(out: Float32Array, mean = 0, std = 1): Float32Array {
    for (let i = 0; i < out.length; i++) out[i] = mean + std * this.normal();
    return out;
  }

  /** A new Float32Array of `n` standard normals. */
  randn(n: number): Float32Array {
    if (!Number.isSafeInteger(n) || n < 0) {
      throw new RangeError(`randn length must be a non-negative integer; got ${String(n)}`);
    }
    return this.fillNormal(new Float32Array(n));
  }

  /** A JSON-serializable snapshot of the generator (a fresh object; later draws do not change it). */
  getState(): RngState {
    return {
      algorithm: RNG_ALGORITHM,
      s: [this.s0 >>> 0, this.s1 >>> 0, this.s2 >>> 0, this.s3 >>> 0],
      cachedNormal: this.cached,
    };
  }

  /** Restores a snapshot from {@link getState} (possibly after a JSON round trip). Validates it. */
  setState(state: RngState): void {
    const st = state as unknown as Record<string, unknown> | null;
    if (typeof st !== 'object' || st === null) {
      throw new TypeError(`Rng state must be an object; got ${st === null ? 'null' : typeof st}`);
    }
    if (st.algorithm !== RNG_ALGORITHM) {
      throw new TypeError(
        `Rng state is for algorithm ${JSON.stringify(st.algorithm)}; expected ${JSON.stringify(RNG_ALGORITHM)}`,
      );
    }
    const s = st.s;
    if (!Array.isArray(s) || s.length !== 4 || !s.every(isUint32)) {
      throw new TypeError('Rng state "s" must be an array of 4 unsigned 32-bit integers');
    }
    if (s.every((w: number) => w === 0)) {
      throw new TypeError('Rng state "s" must not be all zero (xoshiro128** would only produce zeros)');
    }
    const cachedNormal = st.cachedNormal;
    if (cachedNormal !== null && (typeof cachedNormal !== 'number' || !Number.isFinite(cachedNormal))) {
      throw new TypeError('Rng state "cachedNormal" must be a finite number or null');
    }
    this.s0 = s[0] | 0;
    this.s1 = s[1] | 0;
    this.s2 = s[2] | 0;
    this.s3 = s[3] | 0;
    this.cached = cachedNormal;
  }
}
