/**
 * Imports an existing ONNX model into the graph IR at fixed input sizes, so the project can
 * inspect, extend (gradients, LoRA) and re-export graphs it did not build.
 *
 * Symbolic input dimensions (batch, height...) take the sizes given in `inputShapes`;
 * shape inference then runs node by node, folding Shape/Gather/Concat chains into constants.
 * Constant nodes become initializers. The model's own opset is kept.
 *
 * @example
 * const model = await readModelFile('unet/model.onnx');
 * const g = importModel(model, { inputShapes: { sample: [2, 4, 64, 64] } });
 */
import { AttributeType, type AttributeProto, type ModelProto } from './proto-types.js';
import { Graph, GraphError, float, tensorDataOf, type AttrValue, type Attrs } from './graph.js';
import { dtypeFromCode } from './dtype.js';

export interface ImportOptions {
  /** Sizes for inputs whose shapes are symbolic or to override; by input name. */
  inputShapes?: Record<string, readonly number[]>;
  /**
   * Opset of the resulting graph (default: the model's own). Training and composition want the
   * project's OPSET: nodes are then upgraded where their form changed.
   */
  opset?: number;
}

export function importModel(model: ModelProto, options: ImportOptions = {}): Graph {
  const g = new Graph({ name: model.graph.name || 'imported', opset: options.opset ?? sourceOpset(model) });
  for (const { key, value } of model.metadataProps) g.metadata.set(key, value);
  const { outputs } = importInto(g, model, { inputShapes: options.inputShapes ?? {} });
  for (const name of Object.values(outputs)) g.output(name);
  return g;
}

export interface ImportIntoOptions extends ImportOptions {
  /** Model inputs bound to values that already exist in the target graph. */
  bind?: Record<string, string>;
  /** Prefix for every imported name (weights, intermediate values), so models can share a graph. */
  prefix?: string;
}

export interface ImportedModel {
  /** The model's outputs, by their names in the model, as names in the target graph. */
  outputs: Record<string, string>;
  /** Inputs that were not bound and became graph inputs, by model name. */
  inputs: Record<string, string>;
}

/**
 * Appends a model to an existing graph (composition: latent -> vae_decoder -> segmentation ...).
 * Nodes written for an older opset are upgraded to the graph's opset where their form changed
 * (axes and split attributes became inputs).
 *
 * @example
 * const g = new Graph();
 * const z = g.input('latent', [1, 4, 8, 8]);
 * const { outputs } = importInto(g, vaeDecoder, { bind: { latent_sample: z }, prefix: 'vae' });
 */
export function importInto(g: Graph, model: ModelProto, options: ImportIntoOptions = {}): ImportedModel {
  const graph = model.graph;
  const prefix = options.prefix ? `${options.prefix}/` : '';
  const bind = options.bind ?? {};
  const from = sourceOpset(model);
  const rename = new Map<string, string>();
  const nameOf = (n: string) => (n === '' ? '' : (rename.get(n) ?? n));
  const claim = (n: string) => {
    let name = `${prefix}${n}`;
    if (g.has(name)) name = g.fresh(name);
    rename.set(n, name);
    return name;
  };

  // 1. Initializers (weights stay where they are: typed arrays over the decoded bytes).
  const initializerNames = new Set<string>();
  for (const t of graph.initializer) {
    const { data, dtype, shape } = tensorDataOf(t);
    g.initializer(claim(t.name), data, shape, dtype);
    initializerNames.add(t.name);
  }

  // 2. Inputs: bound to existing values, or new graph inputs at fixed sizes.
  const inputs: Record<string, string> = {};
  for (const v of graph.input) {
    if (initializerNames.has(v.name)) continue;
    if (bind[v.name] !== undefined) {
      g.info(bind[v.name]);
      rename.set(v.name, bind[v.name]);
      continue;
    }
    const tt = v.type?.tensorType;
    const dtype = tt ? dtypeFromCode(tt.elemType) : undefined;
    if (!tt || !dtype) throw new GraphError(`input '${v.name}' is not a tensor of a supported type`);
    const given = options.inputShapes?.[v.name];
    const dims = tt.shape?.dim ?? [];
    if (given && tt.shape && dims.length !== given.length) {
      throw new GraphError(
        `input '${v.name}' has rank ${dims.length}, inputShapes gives [${given.join(', ')}]`,
      );
    }
    const shape = given
      ? [...given]
      : dims.map((d, i) => {
          if (d.dimValue !== undefined && d.dimValue > 0) return d.dimValue;
          throw new GraphError(
            `input '${v.name}' has a symbolic dimension ${i} ('${d.dimParam ?? '?'}'); give its size in inputShapes`,
          );
        });
    inputs[v.name] = g.input(claim(v.name), shape, dtype);
  }

  // 3. Nodes, in order, with shape inference.
  for (const [index, node] of graph.node.entries()) {
    const where = `node ${index} '${node.name || node.opType}' (${node.opType})`;
    try {
      const defaultDomain = node.domain === '' || node.domain === 'ai.onnx';
      if (node.opType === 'Constant' && defaultDomain) {
        importConstant(g, claim(node.output[0]), node.attribute);
        continue;
      }
      const attrs: Attrs = {};
      for (const a of node.attribute) attrs[a.name] = attrValue(a);
      const ins = node.input.map(nameOf);
      if (defaultDomain) upgradeNode(g, node.opType, ins, attrs, from, node.output.length);
      g.op(node.opType, ins, attrs, {
        outputs: node.output.map(claim),
        domain: node.domain,
        name: `${prefix}${node.name || `${node.opType}_${index}`}`,
      });
    } catch (e) {
      throw new GraphError(`${where}: ${(e as Error).message}`);
    }
  }

  // 4. Outputs.
  const outputs: Record<string, string> = {};
  for (const v of graph.output) outputs[v.name] = nameOf(v.name);
  return { outputs, inputs };
}

function sourceOpset(model: ModelProto): number {
  return model.opsetImport.find((o) => o.domain === '' || o.domain === 'ai.onnx')?.version ?? 1;
}

const REDUCE_AXES_INPUT_SINCE_18 = [
  'ReduceMean',
  'ReduceMax',
  'ReduceMin',
  'ReduceProd',
  'ReduceL1',
  'ReduceL2',
  'ReduceLogSum',
  'ReduceLogSumExp',
  'ReduceSumSquare',
];

/**
 * Rewrites, in place, the forms that changed between the model's opset and the graph's:
 * attributes that later opsets take as inputs. Other differences are left as they are.
 */
function upgradeNode(
  g: Graph,
  opType: string,
  inputs: string[],
  attrs: Attrs,
  from: number,
  outputCount: number,
): void {
  const to = g.opset;
  if (to <= from) return;
  const moveToInput = (attr: string, position: number) => {
    const v = attrs[attr];
    if (!Array.isArray(v)) return;
    while (inputs.length < position) inputs.push('');
    inputs[position] = g.ints(v as number[]);
    attrs[attr] = undefined; // undefined attributes are not written
  };
  if (from < 13 && to >= 13 && (opType === 'Softmax' || opType === 'LogSoftmax' || opType === 'Hardmax')) {
    // before 13 the input was coerced to 2-D at `axis` (default 1); the same only when that is the last axis
    const rank = g.shape(inputs[0]).length;
    const raw = typeof attrs.axis === 'number' ? attrs.axis : 1;
    const axis = raw < 0 ? raw + rank : raw;
    if (axis !== rank - 1) {
      throw new GraphError(
        `${opType} before opset 13 over axes ${axis}..${rank - 1} cannot be upgraded; import it at its own opset`,
      );
    }
    attrs.axis = axis;
  }
  if (from < 13 && to >= 13) {
    if (opType === 'ReduceSum' || opType === 'Squeeze' || opType === 'Unsqueeze') moveToInput('axes', 1);
    if (opType === 'Split') moveToInput('split', 1);
  }
  if (from < 18 && to >= 18 && REDUCE_AXES_INPUT_SINCE_18.includes(opType)) moveToInput('axes', 1);
  if (from < 10 && to >= 10 && opType === 'Slice' && Array.isArray(attrs.starts)) {
    const starts = attrs.starts as number[];
    const ends = attrs.ends as number[];
    const axes = (attrs.axes as number[] | undefined) ?? starts.map((_, i) => i);
    inputs.splice(1, inputs.length - 1, g.ints(starts), g.ints(ends), g.ints(axes));
    delete attrs.starts;
    delete attrs.ends;
    delete attrs.axes;
  }
  if (from < 18 && to >= 18 && opType === 'Split' && attrs.num_outputs === undefined && !inputs[1]) {
    attrs.num_outputs = outputCount; // Split-18 needs it when no sizes are given
  }
}

function importConstant(g: Graph, output: string, attributes: AttributeProto[]): void {
  const a = attributes[0];
  if (!a) throw new GraphError('Constant without a value');
  switch (a.type) {
    case AttributeType.TENSOR: {
      if (!a.t) throw new GraphError('Constant value tensor is empty');
      const { data, dtype, shape } = tensorDataOf(a.t);
      g.initializer(output, data, shape, dtype);
      return;
    }
    case AttributeType.INT:
      g.initializer(output, BigInt64Array.of(BigInt(a.i ?? 0)), [], 'int64');
      return;
    case AttributeType.INTS:
      g.initializer(
        output,
        BigInt64Array.from(a.ints ?? [], (v) => BigInt(v)),
        [a.ints?.length ?? 0],
        'int64',
      );
      return;
    case AttributeType.FLOAT:
      g.initializer(output, Float32Array.of(a.f ?? 0), [], 'float32');
      return;
    case AttributeType.FLOATS:
      g.initializer(output, Float32Array.from(a.floats ?? []), [a.floats?.length ?? 0], 'float32');
      return;
    default:
      throw new GraphError(`Constant attribute '${a.name}' of type ${a.type} is not supported`);
  }
}

function attrValue(a: AttributeProto): AttrValue {
  switch (a.type) {
    case AttributeType.INT:
      return a.i ?? 0;
    case AttributeType.FLOAT:
      return float(a.f ?? 0);
    case AttributeType.STRING:
      return new TextDecoder().decode(a.s ?? new Uint8Array());
    case AttributeType.INTS:
      return a.ints ?? [];
    case AttributeType.FLOATS:
      return { floats: a.floats ?? [] };
    case AttributeType.STRINGS:
      return (a.strings ?? []).map((s) => new TextDecoder().decode(s));
    default:
      throw new GraphError(`attribute '${a.name}' of type ${a.type} (tensor or graph) is not supported`);
  }
}
