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
}

export function importModel(model: ModelProto, options: ImportOptions = {}): Graph {
  const graph = model.graph;
  const opset = model.opsetImport.find((o) => o.domain === '' || o.domain === 'ai.onnx')?.version ?? 1;
  const g = new Graph({ name: graph.name || 'imported', opset });
  for (const { key, value } of model.metadataProps) g.metadata.set(key, value);

  // 1. Initializers (weights stay where they are: typed arrays over the decoded bytes).
  const initializerNames = new Set<string>();
  for (const t of graph.initializer) {
    const { data, dtype, shape } = tensorDataOf(t);
    g.initializer(t.name, data, shape, dtype);
    initializerNames.add(t.name);
  }

  // 2. Inputs at fixed sizes.
  for (const v of graph.input) {
    if (initializerNames.has(v.name)) continue;
    const tt = v.type?.tensorType;
    const dtype = tt ? dtypeFromCode(tt.elemType) : undefined;
    if (!tt || !dtype) throw new GraphError(`input '${v.name}' is not a tensor of a supported type`);
    const given = options.inputShapes?.[v.name];
    const dims = tt.shape?.dim ?? [];
    const shape = given
      ? [...given]
      : dims.map((d, i) => {
          if (d.dimValue !== undefined && d.dimValue > 0) return d.dimValue;
          throw new GraphError(
            `input '${v.name}' has a symbolic dimension ${i} ('${d.dimParam ?? '?'}'); give its size in inputShapes`,
          );
        });
    if (given && dims.length !== given.length && tt.shape) {
      throw new GraphError(
        `input '${v.name}' has rank ${dims.length}, inputShapes gives [${given.join(', ')}]`,
      );
    }
    g.input(v.name, shape, dtype);
  }

  // 3. Nodes, in order, with shape inference.
  for (const [index, node] of graph.node.entries()) {
    const where = `node ${index} '${node.name || node.opType}' (${node.opType})`;
    try {
      if (node.opType === 'Constant' && (node.domain === '' || node.domain === 'ai.onnx')) {
        importConstant(g, node.output[0], node.attribute);
        continue;
      }
      const attrs: Attrs = {};
      for (const a of node.attribute) attrs[a.name] = attrValue(a);
      g.op(node.opType, node.input, attrs, {
        outputs: node.output,
        domain: node.domain,
        name: node.name || `${node.opType}_${index}`,
      });
    } catch (e) {
      throw new GraphError(`${where}: ${(e as Error).message}`);
    }
  }

  // 4. Outputs.
  for (const v of graph.output) g.output(v.name);
  return g;
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
