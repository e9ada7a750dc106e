/**
 * Growing a trained UNet (and its ControlNet) to more resnets per level without changing what it
 * computes, so training goes on from the smaller model's quality with the larger one's capacity
 * (Net2Net's function-preserving deepening, in the zero-initialised form of ControlNet's convs).
 *
 * A new down resnet (and its transformer) is appended after a level's old ones and starts as the
 * identity: conv2 and the transformer's proj_out are zero, so each adds nothing to its residual
 * path. Its skip then carries the same value as the old last skip of the level. On the way up,
 * a level's first up resnet keeps the old first one's weights (it reads that value; its input
 * also takes h from the level below, so it cannot be a new identity), the new up resnets come
 * next and start as the identity on h (conv2 zero, conv_shortcut = [I | 0]: they ignore their
 * skip), and the old remaining up resnets follow, each reading the skip it read before. A
 * ControlNet grows the same way: the output conv of an old level's last skip moves to the new
 * last skip (the one the first up resnet reads), the others keep theirs, new skips get zero.
 *
 * Every other weight keeps its name. New layers' other weights (conv1, norms, attention) keep
 * the builder's initialisation, so gradients reach them once conv2 / proj_out move off zero.
 *
 * @example
 * const grown = growUnetWeights(weights, TINY_UNET, { ...TINY_UNET, layersPerBlock: 2 });
 */
import { ModelBuilder } from '../onnx/layers.js';
import type { ParameterTensor } from '../training/optimizers.js';
import { controlNet, layersAt, unet, type UnetArchitecture } from './unet.js';

/** The grown UNet's weights (every weight of `to`), from a UNet of architecture `from`. */
export function growUnetWeights(
  weights: readonly ParameterTensor[],
  from: UnetArchitecture,
  to: UnetArchitecture,
  seed = 7,
): ParameterTensor[] {
  const m = new ModelBuilder('unet_grown', seed, 'input');
  const g = m.g;
  const side = 8;
  unet(m, to, {
    sample: g.input('sample', [1, to.latentChannels, side, side]),
    timestep: g.input('timestep', [1], 'int64'),
    context: g.input('context', [1, 4, to.crossAttentionDim]),
  });
  return grow(weights, from, to, m);
}

/** The grown ControlNet's weights, from a ControlNet of architecture `from` (see the file header). */
export function growControlNetWeights(
  weights: readonly ParameterTensor[],
  from: UnetArchitecture,
  to: UnetArchitecture,
  imageFactor: number,
  seed = 13,
): ParameterTensor[] {
  const m = new ModelBuilder('controlnet_grown', seed, 'input');
  const g = m.g;
  const side = 8;
  controlNet(
    m,
    to,
    {
      sample: g.input('sample', [1, to.latentChannels, side, side]),
      timestep: g.input('timestep', [1], 'int64'),
      context: g.input('context', [1, 4, to.crossAttentionDim]),
      cond: g.input('cond', [1, 3, side * imageFactor, side * imageFactor]),
      scale: g.input('scale', [1]),
    },
    { imageFactor },
  );
  return grow(weights, from, to, m);
}

function grow(
  weights: readonly ParameterTensor[],
  from: UnetArchitecture,
  to: UnetArchitecture,
  m: ModelBuilder,
): ParameterTensor[] {
  checkGrowable(from, to);
  const old = new Map(weights.map((w) => [w.name, w]));
  const used = new Set<string>();
  const out: ParameterTensor[] = [];
  for (const [name, init] of m.values) {
    const shape = m.g.shape(name);
    const source = sourceName(name, from, to);
    if (source === undefined) {
      out.push({ name, shape, data: newLayerValue(name, init, shape) });
      continue;
    }
    const w = old.get(source);
    if (!w)
      throw new Error(`the weights to grow have no ${source}${source === name ? '' : ` (for ${name})`}`);
    if (w.data.length !== init.length)
      throw new Error(
        `the weight ${source} has ${w.data.length} values, the grown ${name} needs ${init.length}`,
      );
    used.add(source);
    out.push({ name, shape, data: w.data.slice() });
  }
  const unused = weights.filter((w) => !used.has(w.name) && isModelWeight(w.name));
  if (unused.length > 0)
    throw new Error(
      `${unused.length} weights have no place in the grown model (${unused
        .slice(0, 3)
        .map((w) => w.name)
        .join(', ')}): is the architecture to grow from right?`,
    );
  return out;
}

/** Names of ONNX file initializers that are weights (not constants such as timestep frequencies). */
function isModelWeight(name: string): boolean {
  return /\.(weight|bias)$/.test(name);
}

function checkGrowable(from: UnetArchitecture, to: UnetArchitecture): void {
  const rest = (a: UnetArchitecture) =>
    JSON.stringify({
      ...a,
      layersPerBlock: 0,
      attention: a.blockOutChannels.map((_, l) => a.attention?.[l] ?? true),
    });
  if (rest(from) !== rest(to))
    throw new RangeError(
      'a UNet grows only in resnets per level: the other architecture settings must match',
    );
  from.blockOutChannels.forEach((_, level) => {
    if (layersAt(to, level) < layersAt(from, level))
      throw new RangeError(
        `level ${level} would shrink from ${layersAt(from, level)} to ${layersAt(to, level)} resnets`,
      );
  });
}

/**
 * The old weight a grown weight copies, or undefined for a new layer's weight. Down layers keep
 * their index (new ones are appended); up layer j > 0 moves up by the level's added layers.
 */
function sourceName(name: string, from: UnetArchitecture, to: UnetArchitecture): string | undefined {
  const levels = from.blockOutChannels.length;
  const down = /^down_blocks\.(\d+)\.(resnets|attentions)\.(\d+)\./.exec(name);
  if (down) {
    const j = Number(down[3]);
    return j < layersAt(from, Number(down[1])) ? name : undefined;
  }
  const up = /^up_blocks\.(\d+)\.(resnets|attentions)\.(\d+)\./.exec(name);
  if (up) {
    const level = levels - 1 - Number(up[1]);
    const added = layersAt(to, level) - layersAt(from, level);
    const j = Number(up[3]);
    if (j === 0) return name;
    if (j <= added) return undefined;
    return name.replace(`.${up[2]}.${j}.`, `.${up[2]}.${j - added}.`);
  }
  const zero = /^controlnet_down_blocks\.(\d+)\.(weight|bias)$/.exec(name);
  if (zero) {
    const label = oldSkipLabel(skipLabels(to)[Number(zero[1])], from, to);
    const oldIndex = label === undefined ? -1 : skipLabels(from).indexOf(label);
    return oldIndex < 0 ? undefined : `controlnet_down_blocks.${oldIndex}.${zero[2]}`;
  }
  return name;
}

/**
 * The old skip whose ControlNet residual a grown skip takes: a level's last skip is what its first
 * up resnet reads, before and after, so the old last one's residual moves there; the skips of the
 * old last resnet's new position and of the other new resnets get none.
 */
function oldSkipLabel(label: string, from: UnetArchitecture, to: UnetArchitecture): string | undefined {
  const r = /^(\d+)\.r(\d+)$/.exec(label);
  if (!r) return label;
  const level = Number(r[1]);
  const j = Number(r[2]);
  const last = layersAt(from, level) - 1;
  if (j === layersAt(to, level) - 1) return `${level}.r${last}`;
  return j < last ? label : undefined;
}

/** Each skip of the down path by what produces it, in order (`conv_in`, `1.r0`, `1.down`, ...). */
function skipLabels(a: UnetArchitecture): string[] {
  const labels = ['conv_in'];
  a.blockOutChannels.forEach((_, level) => {
    for (let j = 0; j < layersAt(a, level); j++) labels.push(`${level}.r${j}`);
    if (level < a.blockOutChannels.length - 1) labels.push(`${level}.down`);
  });
  return labels;
}

/** A new layer's starting value: zero where it would add to its residual, [I | 0] shortcuts. */
function newLayerValue(name: string, init: Float32Array, shape: number[]): Float32Array {
  if (/\.(conv2|proj_out)\.(weight|bias)$/.test(name) || name.startsWith('controlnet_down_blocks.'))
    return new Float32Array(init.length);
  if (name.endsWith('.conv_shortcut.weight')) {
    // [out, in, 1, 1]: pass the first `out` input channels (h) through, ignore the skip's
    const [outCh, inCh] = shape;
    const w = new Float32Array(init.length);
    for (let o = 0; o < outCh; o++) w[o * inCh + o] = 1;
    return w;
  }
  if (name.endsWith('.conv_shortcut.bias')) return new Float32Array(init.length);
  return init.slice();
}
