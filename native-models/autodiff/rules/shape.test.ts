import { describe, expect, it } from 'vitest';
import { Graph } from '../../onnx/graph.js';
import { numel } from '../../onnx/dtype.js';
import { Rng } from '../../tensor/random.js';
import { checkGradients, weightedSum, type GradCheckResult } from '../gradcheck.js';
import { gradients } from '../index.js';

type FloatType = 'float32' | 'float64';

/**
 * Builds y = build(inputs) with float inputs `shapes` (all checked) and int64 inputs `ints`
 * (fed, not differentiated), and checks d sum(y * R) / d inputs against finite differences.
 */
async function gradcheck(
  dtype: FloatType,
  shapes: Record<string, number[]>,
  build: (g: Graph, x: Record<string, string>) => string,
  ints: Record<string, { shape: number[]; values: number[] }> = {},
): Promise<GradCheckResult> {
  const g = new Graph({ floatType: dtype });
  const x: Record<string, string> = {};
  const feeds: Record<string, Float32Array | Float64Array | BigInt64Array> = {};
  Object.entries(shapes).forEach(([name, shape], k) => {
    x[name] = g.input(name, shape, dtype);
    const r = new Rng(10 + k).randn(numel(shape));
    feeds[name] = dtype === 'float64' ? Float64Array.from(r) : r;
  });
  for (const [name, { shape, values }] of Object.entries(ints)) {
    x[name] = g.input(name, shape, 'int64');
    feeds[name] = BigInt64Array.from(values, (v) => BigInt(v));
  }
  const loss = weightedSum(g, build(g, x));
  return checkGradients(g, loss, Object.keys(shapes), feeds);
}

const F64 = 1e-7;
const F32 = 2e-3;

async function expectF64(...args: Parameters<typeof gradcheck>) {
  const r = await gradcheck(...args);
  expect(r.maxError).toBeLessThan(F64);
  expect(r.directionalError).toBeLessThan(F64);
  return r;
}

async function expectF32(...args: Parameters<typeof gradcheck>) {
  const r = await gradcheck(...args);
  expect(r.maxError).toBeLessThan(F32);
  expect(r.directionalError).toBeLessThan(F32);
  return r;
}

/** The op types of the nodes `gradients` appends for a loss over `y`. */
function emittedOps(g: Graph, y: string, wrt: string[]): string[] {
  const loss = g.op1('ReduceSum', [y], { keepdims: 0 });
  const before = g.nodes.length;
  gradients(g, loss, wrt);
  return g.nodes.slice(before).map((n) => n.opType);
}

describe('reshaping gradient rules (float64)', () => {
  it('Reshape with 0 and -1', async () => {
    await expectF64('float64', { x: [2, 3, 4] }, (g, { x }) => g.op1('Reshape', [x, g.ints([0, -1, 2])]));
  });

  it('Flatten with a negative axis', async () => {
    await expectF64('float64', { x: [2, 3, 4] }, (g, { x }) => g.op1('Flatten', [x], { axis: -1 }));
  });

  it('Squeeze and Unsqueeze with negative axes', async () => {
    await expectF64('float64', { x: [2, 1, 3, 1] }, (g, { x }) => g.op1('Squeeze', [x, g.ints([-1, 1])]));
    await expectF64('float64', { x: [2, 3] }, (g, { x }) => g.op1('Unsqueeze', [x, g.ints([0, -1])]));
  });

  it('Transpose with an explicit and the default perm', async () => {
    await expectF64('float64', { x: [2, 3, 4] }, (g, { x }) => g.op1('Transpose', [x], { perm: [2, 0, 1] }));
    await expectF64('float64', { x: [2, 3, 4] }, (g, { x }) => g.op1('Transpose', [x]));
  });

  it('DepthToSpace in DCR and CRD mode, SpaceToDepth', async () => {
    for (const mode of ['DCR', 'CRD']) {
      await expectF64('float64', { x: [1, 8, 2, 3] }, (g, { x }) =>
        g.op1('DepthToSpace', [x], { blocksize: 2, mode }),
      );
    }
    await expectF64('float64', { x: [2, 2, 4, 6] }, (g, { x }) =>
      g.op1('SpaceToDepth', [x], { blocksize: 2 }),
    );
  });
});

describe('Concat and Split gradient rules (float64)', () => {
  it('Concat of three inputs on a negative axis', async () => {
    await expectF64('float64', { a: [2, 3, 4], b: [2, 1, 4], c: [2, 2, 4] }, (g, { a, b, c }) =>
      g.op1('Concat', [a, b, c], { axis: -2 }),
    );
  });

  it('Concat emits nothing for inputs that need no gradient', async () => {
    const build = () => {
      const g = new Graph({ floatType: 'float64' });
      const [a, b, c] = ['a', 'b', 'c'].map((n, i) => g.input(n, [2, i + 1, 3], 'float64'));
      return { g, y: g.op1('Concat', [a, b, c], { axis: 1 }) };
    };
    let { g, y } = build();
    const one = emittedOps(g, y, ['b']);
    expect(one.filter((op) => op === 'Slice')).toHaveLength(1);
    expect(one).not.toContain('Split');
    const slice = g.nodes.find((n) => n.opType === 'Slice');
    expect(slice?.inputs.slice(1, 4).map((v) => g.constValue(v))).toEqual([[1], [3], [1]]);
    ({ g, y } = build());
    const all = emittedOps(g, y, ['a', 'b', 'c']);
    expect(all.filter((op) => op === 'Split')).toHaveLength(1);
    expect(all).not.toContain('Slice');
    // every input gets its own slice, nothing more, when two of three need a gradient
    ({ g, y } = build());
    expect(emittedOps(g, y, ['a', 'c']).filter((op) => op === 'Slice')).toHaveLength(2);

    const r = await expectF64('float64', { b: [2, 2, 3] }, (gr, { b }) => {
      const a = gr.initializer('a', new Float64Array(6).fill(1), [2, 1, 3]);
      const c = gr.initializer('c', new Float64Array(18).fill(2), [2, 3, 3]);
      return gr.op1('Concat', [a, b, c], { axis: 1 });
    });
    expect(r.worst?.input).toBe('b');
  });

  it('Split with a split input, an output without gradient counting as zeros', async () => {
    await expectF64('float64', { x: [2, 7, 3] }, (g, { x }) => {
      const [p, , q] = g.op('Split', [x, g.ints([2, 4, 1])], { axis: -2 }, { count: 3 });
      return g.op1('Concat', [q, g.op1('Neg', [p])], { axis: 1 });
    });
  });

  it('Split with num_outputs, uneven parts, one or several used', async () => {
    await expectF64('float64', { x: [7, 2] }, (g, { x }) => {
      const parts = g.op('Split', [x], { axis: 0, num_outputs: 3 }, { count: 3 });
      expect(parts.map((p) => g.shape(p)[0])).toEqual([3, 3, 1]);
      return parts[1];
    });
    await expectF64('float64', { x: [7, 2] }, (g, { x }) => {
      const [a, b, c] = g.op('Split', [x], { axis: 0, num_outputs: 3 }, { count: 3 });
      return g.op1('Concat', [c, a, b], { axis: 0 });
    });
  });
});

describe('Slice and Pad gradient rules (float64)', () => {
  const slice =
    (starts: number[], ends: number[], axes: number[], steps?: number[]) => (g: Graph, x: string) =>
      g.op1('Slice', [x, g.ints(starts), g.ints(ends), g.ints(axes), ...(steps ? [g.ints(steps)] : [])]);

  it('step 1 with negative and clamped bounds', async () => {
    await expectF64('float64', { x: [4, 6, 5] }, (g, { x }) => {
      const y = slice([-3, -100, 1], [1000, -1, 1000], [1, 0, -1])(g, x);
      expect(g.shape(y)).toEqual([3, 3, 4]);
      return y;
    });
  });

  it('steps 2 and -1 with clamped bounds, the strided block running past the end', async () => {
    await expectF64('float64', { x: [6, 4, 7] }, (g, { x }) => {
      const y = slice([1, -1, 0], [100, -100, 7], [0, 2, 1], [2, -1, 3])(g, x);
      expect(g.shape(y)).toEqual([3, 2, 7]);
      return y;
    });
  });

  it('steps -3 and 2 on negative axes, from negative starts', async () => {
    await expectF64('float64', { x: [3, 5, 8] }, (g, { x }) => {
      const y = slice([-2, -5, -1], [-1000, 5, -4], [-1, -2, 0], [-3, 2, -2])(g, x);
      expect(g.shape(y)).toEqual([2, 3, 3]);
      return y;
    });
    // a single element from a negative step; steps omitted entirely
    await expectF64('float64', { x: [3, 5] }, (g, { x }) => slice([2, 4], [1, 0], [0, 1], [-1, -9])(g, x));
    await expectF64('float64', { x: [3, 5] }, (g, { x }) =>
      g.op1('Slice', [x, g.ints([1, -4]), g.ints([3, -1])]),
    );
    // an empty slice: the gradient is zero
    await expectF64('float64', { x: [3, 5] }, (g, { x }) => {
      const y = slice([0], [-1], [1], [-1])(g, x);
      expect(g.shape(y)).toEqual([3, 0]);
      return y;
    });
  });

  it('Pad constant with positive and negative pads, an axes input and the constant value', async () => {
    await expectF64('float64', { x: [3, 4, 5], c: [] }, (g, { x, c }) => {
      const y = g.op1('Pad', [x, g.ints([2, -1, 0, 1, 3, -2]), c]);
      expect(g.shape(y)).toEqual([6, 6, 3]);
      return y;
    });
    await expectF64('float64', { x: [3, 4, 5], c: [1] }, (g, { x, c }) =>
      g.op1('Pad', [x, g.ints([1, 2, 0, 3]), c, g.ints([-1, 0])]),
    );
  });

  for (const mode of ['reflect', 'edge', 'wrap']) {
    it(`Pad ${mode}`, async () => {
      await expectF64('float64', { x: [2, 4, 5] }, (g, { x }) =>
        g.op1('Pad', [x, g.ints([0, 3, 2, 0, 1, 4])], { mode }),
      );
    });
  }

  it('refuses a Pad wrap wider than the axis (onnxruntime does not wrap it as ONNX does)', () => {
    const g = new Graph();
    const x = g.input('x', [2, 3]);
    const y = g.op1('Pad', [x, g.ints([0, 4, 0, 1])], { mode: 'wrap' });
    expect(() => emittedOps(g, y, [x])).toThrow(/Pad wrap pads larger than the axis size 3/);
  });
});

describe('broadcasting and gathering gradient rules (float64)', () => {
  it('Expand to a higher rank', async () => {
    await expectF64('float64', { x: [3, 1] }, (g, { x }) => g.op1('Expand', [x, g.ints([2, 3, 4])]));
  });

  it('Tile', async () => {
    await expectF64('float64', { x: [2, 1, 3] }, (g, { x }) => g.op1('Tile', [x, g.ints([2, 3, 1])]));
  });

  it('Gather on axis 0 with repeated indices (an embedding lookup)', async () => {
    const values = [3, 1, 3, 0, 5, 3, 1, 1, 2, 3];
    await expectF64('float64', { table: [6, 4] }, (g, { table, ids }) => g.op1('Gather', [table, ids]), {
      ids: { shape: [2, 5], values },
    });
    // the same indices as a constant are normalized at build time
    await expectF64('float64', { table: [6, 4] }, (g, { table }) =>
      g.op1('Gather', [table, g.ints(values, [2, 5])]),
    );
  });

  it('Gather on a negative axis with negative, repeated indices; a scalar index on axis 1', async () => {
    await expectF64('float64', { x: [2, 3, 5] }, (g, { x, ids }) => g.op1('Gather', [x, ids], { axis: -1 }), {
      ids: { shape: [4], values: [-1, 4, 0, -5] },
    });
    await expectF64('float64', { x: [2, 3, 5] }, (g, { x }) =>
      g.op1('Gather', [x, g.ints([-2], [])], { axis: 1 }),
    );
  });

  it('GatherElements with negative and repeated indices', async () => {
    await expectF64(
      'float64',
      { x: [3, 4] },
      (g, { x, ids }) => g.op1('GatherElements', [x, ids], { axis: 1 }),
      {
        ids: { shape: [3, 5], values: [0, -1, 3, 3, 1, 2, 2, 2, -4, 0, 1, 3, -2, 0, 0] },
      },
    );
  });
});

describe('Resize gradient rule (float32: onnxruntime has no float64 Resize)', () => {
  const resize =
    (attrs: Record<string, string>, sizes?: number[], scales?: number[]) => (g: Graph, x: string) => {
      const scaleInput = scales
        ? g.initializer(g.fresh('scales'), Float32Array.from(scales), [scales.length])
        : '';
      const inputs = [x, '', scaleInput];
      if (sizes) inputs.push(g.ints(sizes));
      return g.op1('Resize', inputs, attrs);
    };

  it('nearest x2 (replication) in the project form and the default form', async () => {
    const project = { mode: 'nearest', nearest_mode: 'floor', coordinate_transformation_mode: 'asymmetric' };
    await expectF32('float32', { x: [2, 3, 4, 5] }, (g, { x }) =>
      resize(project, undefined, [1, 1, 2, 2])(g, x),
    );
    await expectF32('float32', { x: [1, 2, 3, 4] }, (g, { x }) =>
      resize({ mode: 'nearest' }, [1, 2, 9, 8])(g, x),
    );
  });

  it('nearest at non-integer factors, on an outer axis too', async () => {
    await expectF32('float32', { x: [1, 2, 5, 7] }, (g, { x }) =>
      resize({ mode: 'nearest' }, [1, 2, 8, 12])(g, x),
    );
    await expectF32('float32', { x: [5, 3, 4] }, (g, { x }) =>
      resize(
        { mode: 'nearest', nearest_mode: 'ceil', coordinate_transformation_mode: 'asymmetric' },
        [8, 3, 3],
      )(g, x),
    );
  });

  for (const coordinates of ['asymmetric', 'half_pixel', 'align_corners', 'pytorch_half_pixel']) {
    it(`bilinear 5x7 -> 8x12 and x2, ${coordinates}`, async () => {
      const attrs = { mode: 'linear', coordinate_transformation_mode: coordinates };
      await expectF32('float32', { x: [2, 3, 5, 7] }, (g, { x }) => resize(attrs, [2, 3, 8, 12])(g, x));
      await expectF32('float32', { x: [1, 2, 4, 3] }, (g, { x }) =>
        resize(attrs, undefined, [1, 1, 2, 2])(g, x),
      );
    });
  }

  it('bilinear downscaling', async () => {
    await expectF32('float32', { x: [1, 2, 9, 8] }, (g, { x }) =>
      resize({ mode: 'linear', coordinate_transformation_mode: 'half_pixel' }, [1, 2, 4, 5])(g, x),
    );
  });

  it('sums replicated pixels back with a reshape, and interpolates with one MatMul per axis', () => {
    const ops = (attrs: Record<string, string>, sizes: number[]) => {
      const g = new Graph();
      const x = g.input('x', [1, 2, 5, 7]);
      return emittedOps(g, resize(attrs, sizes)(g, x), [x]);
    };
    const nearest = ops(
      { mode: 'nearest', nearest_mode: 'floor', coordinate_transformation_mode: 'asymmetric' },
      [1, 2, 10, 21],
    );
    expect(nearest).not.toContain('MatMul');
    expect(nearest.filter((op) => op === 'ReduceSum')).toHaveLength(1);
    const linear = ops({ mode: 'linear' }, [1, 2, 8, 12]);
    expect(linear.filter((op) => op === 'MatMul')).toHaveLength(2);
    expect(linear).not.toContain('Transpose');
  });

  it('refuses cubic mode with a clear error', () => {
    const g = new Graph();
    const x = g.input('x', [1, 1, 2, 2]);
    const y = resize({ mode: 'cubic' }, [1, 1, 4, 4])(g, x);
    expect(() => emittedOps(g, y, [x])).toThrow(/Resize mode 'cubic' has no gradient rule/);
  });
});
