/**
 * The CLIP-like text encoder (transformers CLIPTextModel layout, small): shared by the random test
 * model and the tiny world's trained text tower, so training and inference build the same graph
 * with the same weight names (`text_model.encoder.layers.0.self_attn.to_q.weight`, ...).
 *
 *   input_ids int32 [B, L] -> last_hidden_state [B, L, H] (after the final layer norm),
 *                             pooled [B, H] (the hidden state at the end token)
 *
 * Token and position embeddings, pre-norm transformer layers with causal self-attention and a GELU
 * MLP (4H), a final layer norm. As in CLIP, the pooled output is taken at argmax(input_ids): the end
 * token has the largest id of the vocabulary, and padding repeats it, so the first one wins.
 *
 * @example
 * const m = new ModelBuilder('text_encoder', 1);
 * const ids = m.g.input('input_ids', [1, 48], 'int32');
 * const { lastHiddenState, pooled } = textEncoder(m, arch, ids);
 * m.g.output(lastHiddenState, 'last_hidden_state');
 * m.g.output(pooled, 'pooler_output');
 */
import type { ModelBuilder } from '../onnx/layers.js';

export interface TextEncoderArchitecture {
  vocabSize: number;
  hiddenSize: number;
  layers: number;
  heads: number;
  /**
   * Rows of the position embedding (config `max_position_embeddings`). The input may be shorter
   * (a training graph over the longest caption); then only the first rows are used.
   */
  maxPositions: number;
  /** Initial standard deviation of the token embedding (default 0.02, as CLIP). */
  tokenEmbeddingStd?: number;
  /** Initial standard deviation of the position embedding (default 0.01, as CLIP). */
  positionEmbeddingStd?: number;
}

export function textEncoder(
  m: ModelBuilder,
  a: TextEncoderArchitecture,
  inputIds: string,
): { lastHiddenState: string; pooled: string } {
  const g = m.g;
  const L = g.shape(inputIds)[1];
  const H = a.hiddenSize;
  if (H % a.heads !== 0)
    throw new RangeError(`text encoder: hidden size ${H} is not divisible by ${a.heads} heads`);
  if (L > a.maxPositions) {
    throw new RangeError(
      `text encoder: sequence length ${L} exceeds the ${a.maxPositions} position embeddings`,
    );
  }
  const tokenEmbedding = m.param(
    'text_model.embeddings.token_embedding.weight',
    [a.vocabSize, H],
    'normal',
    a.tokenEmbeddingStd ?? 0.02,
  );
  let positionEmbedding = m.param(
    'text_model.embeddings.position_embedding.weight',
    [a.maxPositions, H],
    'normal',
    a.positionEmbeddingStd ?? 0.01,
  );
  if (L < a.maxPositions)
    positionEmbedding = g.op1('Slice', [positionEmbedding, g.ints([0]), g.ints([L]), g.ints([0])]);
  let h = g.op1('Add', [g.op1('Gather', [tokenEmbedding, inputIds], { axis: 0 }), positionEmbedding]);
  // causal mask: a token attends to itself and earlier tokens only
  const mask = new Float32Array(L * L);
  for (let i = 0; i < L; i++) for (let j = i + 1; j < L; j++) mask[i * L + j] = -1e9;
  const causal = g.initializer(g.has('causal_mask') ? g.fresh('causal_mask') : 'causal_mask', mask, [L, L]);
  for (let layer = 0; layer < a.layers; layer++) {
    const p = `text_model.encoder.layers.${layer}`;
    const attn = m.attention(`${p}.self_attn`, m.layerNorm(`${p}.layer_norm1`, h), {
      heads: a.heads,
      mask: causal,
    });
    h = g.op1('Add', [h, attn]);
    const mlp = m.linear(
      `${p}.mlp.fc2`,
      m.gelu(m.linear(`${p}.mlp.fc1`, m.layerNorm(`${p}.layer_norm2`, h), 4 * H)),
      H,
    );
    h = g.op1('Add', [h, mlp]);
  }
  h = m.layerNorm('text_model.final_layer_norm', h);
  // pooled: the hidden state at the (first) end token, selected by a one-hot row
  const eosIndex = g.op1('ArgMax', [inputIds], { axis: 1, keepdims: 1 });
  const onehotValues = g.has('onehot_values') ? g.fresh('onehot_values') : 'onehot_values';
  const oneHot = g.op1(
    'OneHot',
    [eosIndex, g.ints([L], []), g.initializer(onehotValues, Float32Array.from([0, 1]), [2])],
    { axis: -1 },
  );
  const pooled = g.op1('Reshape', [g.op1('MatMul', [oneHot, h]), g.ints([0, -1])]);
  return { lastHiddenState: h, pooled };
}

/** Number of weights of {@link textEncoder} for an architecture. */
export function textEncoderParameterCount(a: TextEncoderArchitecture): number {
  const H = a.hiddenSize;
  const layerNorm = 2 * H;
  const attention = 3 * H * H + H * H + H;
  const mlp = H * 4 * H + 4 * H + 4 * H * H + H;
  return a.vocabSize * H + a.maxPositions * H + a.layers * (2 * layerNorm + attention + mlp) + layerNorm;
}
