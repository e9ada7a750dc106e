/**
 * `npm run train:tiny -- --stage <name> [--resume] [--steps N] [--batch N] [--out DIR] [--work DIR]`
 * (evaluate also takes `--guidance X`, `--sweep`, a quick run that writes nothing, and
 * `--reference-judge DIR`, a second judge's figures on the same pictures, logged; clip takes
 * `--text-encoder` to replace text_encoder/ even under a trained UNet; unet takes `--regional X`,
 * the share of regional samples, `--subject-weight X`, the extra weight of subject pixels in the
 * plain samples' loss, `--person-share X`, the share of samples drawn from the scenes naming a
 * person, `--contrast X`, the weight of the caption contrast (a picture's noise must be predicted
 * better from its caption than with man/boy and woman/girl swapped; unet-stage.ts),
 * `--train-text-encoder`, which trains the text encoder with it,
 * and `--layers-per-block N` (or `N,N,N`), resnets per level: more than the folder's UNet has
 * grows it (and the controlnet stage then grows the folder's ControlNet alike) without changing
 * its output, with checkpoints of their own (unet-layers-2/ ...);
 * unet and controlnet take `--caption-dropout X`, the share of
 * samples trained on the empty prompt, default 0.1, and `--dataset-size N`, the scenes encoded
 * once and cached, default 32,000 and 4,000; vae-encoder takes `--anchor X`, the weight
 * that keeps its latents where the UNet learned them, default 0.1, and `--encoder-resnets N`, the
 * resnets per encoder level, more than the folder's grows the encoder; segmentation takes
 * `--fine-tune`, a run from the folder's judge instead of from scratch; a flag the stage does not
 * read, or a value out of range, is refused before anything runs: train-args.ts):
 * the recipes of the embedded tiny models, one stage at a time, with checkpoints in the work
 * folder so a stage can run in the background and continue in a later session.
 *
 * Stages, in order: `tokenizer`, `vae` (then optionally `vae-decoder`, which grows the decoder on
 * the frozen encoder, and `vae-encoder`, which refines the encoder against that decoder, anchored
 * to its latents), `clip` (its text tower is the text encoder), `unet`,
 * `controlnet`, `segmentation`, then `evaluate` (the judge's figures). Each stage writes its part of
 * the model folder (default native-models/weights/tiny-sd), refreshes model_index.json and merges
 * its figures into metrics.json there; step counts add up across runs (run-steps.ts).
 */
import type { VaeArchitecture } from '../models/vae.js';
import { readOnnxWeights } from '../training/onnx-weights.js';
import { RARE_IDENTIFIERS } from '../tokenizer/rare-tokens.js';
import { mkdir, readFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseTrainArgs, type StageName, type StageOptions } from './train-args.js';
import { stepsBefore } from './run-steps.js';
import { writeFileAtomic } from '../io/atomic-write.js';
import { Rng } from '../tensor/random.js';
import {
  buildByteLevelVocab,
  CLIPTokenizer,
  learnBpeMerges,
  writeTokenizerFolder,
} from '../tokenizer/clip-tokenizer.js';
import {
  encoderShift,
  evaluateVae,
  resnetsPerBlock,
  TINY_VAE,
  TINY_VAE_GROWN,
  trainVae,
  trainVaeDecoder,
  trainVaeEncoder,
  vaeDecoderModel,
  vaeEncoderModel,
  vaeInferenceModels,
  writeVae,
  writeVaePart,
  type ImageSource,
} from './vae-stage.js';
import { generateScene } from '../world/scene.js';
import {
  IMAGE_SIDE,
  LATENT_SIDE,
  layoutSuffix,
  TINY_UNET,
  tinyUnetArchitecture,
  trainUnet,
  unetInferenceModel,
  unetParameterCount,
  unetWeightsOnly,
  writeUnet,
} from './unet-stage.js';
import { controlNetInferenceModel, trainControlNet, writeControlNet } from './controlnet-stage.js';
import { growControlNetWeights, growUnetWeights } from '../models/unet-grow.js';
import type { UnetArchitecture } from '../models/unet.js';
import { existsSync } from 'node:fs';
import { modelIndex } from '../models/random-model.js';
import { StableDiffusion } from '../pipelines/stable-diffusion.js';
import { Runtime } from '../runtime/session.js';
import { REQUEST_DEFAULTS } from '../msp/request.js';
import { encodePng } from '../image/png.js';
import { evaluateTinyModel, imageGrid } from './evaluate.js';
import { runSegmentationStage } from './segmentation-stage.js';
import {
  clipInferenceModels,
  clipParameterCounts,
  evaluateClip,
  textEncoderInferenceModel,
  tinyClipArchitecture,
  trainClip,
  worldClipBatch,
  writeClip,
} from './clip-stage.js';

const REPO = resolve(
  fileURLToPath(new URL('.', import.meta.url)),
  '..',
  '..',
  ...(import.meta.url.includes('/dist/') ? ['..'] : []),
);

/** Training images: world scenes at 128x128, randomly cropped to the requested size. */
export const worldImages: ImageSource = (rng, size) => {
  const scene = generateScene(rng, { size: 128, subjects: 1 + Math.floor(rng.nextFloat() * 4) });
  const { data, width } = scene.image;
  const x0 = Math.floor(rng.nextFloat() * (width - size + 1));
  const y0 = Math.floor(rng.nextFloat() * (width - size + 1));
  const out = new Float32Array(3 * size * size);
  for (let y = 0; y < size; y++) {
    for (let x = 0; x < size; x++) {
      const p = ((y0 + y) * width + (x0 + x)) * 3;
      for (let c = 0; c < 3; c++) out[c * size * size + y * size + x] = data[p + c] / 127.5 - 1;
    }
  }
  return out;
};

async function mergeMetrics(dir: string, figures: Record<string, number>): Promise<void> {
  const path = join(dir, 'metrics.json');
  let current: Record<string, number> = {};
  try {
    current = JSON.parse(await readFile(path, 'utf8')) as Record<string, number>;
  } catch {
    // first stage to write metrics
  }
  await writeFileAtomic(path, JSON.stringify({ ...current, ...figures }, null, 2) + '\n');
}

/** model_index.json naming the components present in the folder (ControlNet once its stage ran). */
async function writeModelIndex(dir: string): Promise<void> {
  const index = modelIndex(existsSync(join(dir, 'controlnet', 'model.onnx')) ? 'unet' : false, {
    note: 'MSP Studio tiny-world model, trained by npm run train:tiny (see MODEL_CARD.md)',
    scheduler: 'DDIMScheduler',
  });
  await writeFileAtomic(join(dir, 'model_index.json'), JSON.stringify(index, null, 2) + '\n');
}

type Stage = (o: StageOptions) => Promise<void>;

/** One line of stage output on stdout. */
function log(line: string): void {
  process.stdout.write(line + '\n');
}

/**
 * An `onProgress` for a training loop: says where the run starts (a resumed one mid-way), then every
 * 25th step and the last one, the loss, any `extra` figures, the learning rate and the time per step
 * since the previous line.
 */
function progressLog<P extends { step: number; totalSteps: number; loss: number; lr: number }>(
  stage: string,
  write: (line: string) => void,
  extra?: (p: P) => string,
): (p: P) => void {
  let last: { step: number; at: number } | null = null;
  return (p) => {
    const now = performance.now();
    if (!last) {
      write(`${stage}: starting at step ${p.step - 1}`);
      last = { step: p.step, at: now };
      if (p.step !== p.totalSteps) return;
    }
    if (p.step % 25 !== 0 && p.step !== p.totalSteps) return;
    const steps = p.step - last.step;
    const pace = steps > 0 ? ` ${((now - last.at) / steps).toFixed(0)} ms/step` : '';
    const figures = extra ? ` ${extra(p)}` : '';
    write(
      `${stage} step ${p.step}/${p.totalSteps} loss ${p.loss.toFixed(4)}${figures} lr ${p.lr.toExponential(2)}${pace}`,
    );
    last = { step: p.step, at: now };
  };
}

const STAGES: Partial<Record<StageName, Stage>> = {
  /** A CLIP-format BPE tokenizer learned from 20,000 world captions, plus the rare identifier tokens. */
  async tokenizer(o) {
    const rng = new Rng(20_261_126);
    const captions: string[] = [];
    for (let i = 0; i < (o.steps ?? 20_000); i++) captions.push(generateScene(rng, { size: 32 }).caption);
    const words = new Set(captions.flatMap((c) => c.toLowerCase().split(/[^a-z]+/)));
    const clash = RARE_IDENTIFIERS.filter((t) => words.has(t));
    if (clash.length) throw new Error(`identifier tokens occur in the captions: ${clash.join(', ')}`);
    // each identifier appears in the BPE corpus often enough to become one token; the text
    // encoder's pretraining captions never contain them
    const corpus = [...captions, ...RARE_IDENTIFIERS.flatMap((t) => Array<string>(50).fill(t))];
    const merges = learnBpeMerges(corpus, 1200);
    const { vocab } = buildByteLevelVocab(merges);
    await writeTokenizerFolder(join(o.out, 'tokenizer'), {
      vocab,
      merges,
      modelMaxLength: 48,
      padToken: '<|endoftext|>',
    });
    const tokenizer = await CLIPTokenizer.fromFolder(join(o.out, 'tokenizer'));
    const single = RARE_IDENTIFIERS.filter((t) => tokenizer.tokenize(t).length === 1);
    await writeFileAtomic(
      join(o.out, 'tokenizer', 'rare_tokens.json'),
      JSON.stringify({ identifiers: single }, null, 2) + '\n',
    );
    const lengths = captions.slice(0, 2000).map((c) => tokenizer.encode(c).tokenCount);
    process.stdout.write(
      `tokenizer: ${Object.keys(vocab).length} tokens from ${captions.length} captions; ${single.length} single-token identifiers; ` +
        `caption length ${Math.min(...lengths)}..${Math.max(...lengths)} tokens (sequence length 48)\n`,
    );
  },

  async vae(o) {
    const steps = o.steps ?? 3000;
    const started = performance.now();
    const result = await trainVae({
      images: worldImages,
      steps,
      size: 64,
      batch: o.batch ?? 8,
      checkpointDir: join(o.work, 'vae'),
      checkpointEvery: 100,
      resume: o.resume,
      onProgress: progressLog('vae', log),
    });
    const models = vaeInferenceModels(result.parameters);
    const { psnr, latentStd } = await evaluateVae(models, worldImages, { count: 64, size: 128 });
    const scalingFactor = Number((1 / latentStd).toFixed(5));
    await writeVae(o.out, models, scalingFactor);
    await mergeMetrics(o.out, { vae_psnr_db: Number(psnr.toFixed(2)), vae_steps: result.step });
    process.stdout.write(
      `vae: ${result.step} steps, held-out PSNR ${psnr.toFixed(2)} dB, latent std ${latentStd.toFixed(3)} (scaling_factor ${scalingFactor}), ${((performance.now() - started) / 60000).toFixed(1)} min this run\n`,
    );
  },

  /**
   * The decoder grown to two resnets per level (the added ones start as identities) and trained on
   * the frozen encoder's posterior means: the latent space, and so the UNet, stay as they are. The
   * folder's decoder is replaced only when the new one reconstructs the held-out images better.
   */
  async 'vae-decoder'(o) {
    const steps = o.steps ?? 3000;
    const started = performance.now();
    const encoderPath = join(o.out, 'vae_encoder', 'model.onnx');
    const decoderPath = join(o.out, 'vae_decoder', 'model.onnx');
    const encoder = new Uint8Array(await readFile(encoderPath));
    const current = new Uint8Array(await readFile(decoderPath));
    const { scaling_factor: scalingFactor } = JSON.parse(
      await readFile(join(o.out, 'vae_decoder', 'config.json'), 'utf8'),
    ) as { scaling_factor: number };
    const before = await evaluateVae({ encoder, decoder: current }, worldImages, { count: 64, size: 128 });
    process.stdout.write(`vae-decoder: the folder's decoder reconstructs at ${before.psnr.toFixed(2)} dB\n`);
    const result = await trainVaeDecoder({
      encoder,
      initialWeights: await readOnnxWeights(decoderPath),
      architecture: TINY_VAE_GROWN,
      images: worldImages,
      steps,
      batch: o.batch ?? 8,
      checkpointDir: join(o.work, 'vae-decoder'),
      checkpointEvery: 100,
      resume: o.resume,
      onProgress: progressLog('vae-decoder', log),
    });
    const decoder = vaeDecoderModel(result.parameters, TINY_VAE_GROWN);
    const after = await evaluateVae({ encoder, decoder }, worldImages, { count: 64, size: 128 });
    const minutes = ((performance.now() - started) / 60000).toFixed(1);
    if (after.psnr <= before.psnr) {
      process.stdout.write(
        `vae-decoder: ${result.step} steps reach ${after.psnr.toFixed(2)} dB, no better than ${before.psnr.toFixed(2)}; the folder keeps its decoder (${minutes} min this run)\n`,
      );
      return;
    }
    await writeVaePart(o.out, 'vae_decoder', decoder, scalingFactor, TINY_VAE_GROWN);
    await mergeMetrics(o.out, { vae_psnr_db: Number(after.psnr.toFixed(2)), vae_decoder_steps: result.step });
    process.stdout.write(
      `vae-decoder: ${result.step} steps (${result.grown.length} added parameter tensors), held-out PSNR ${before.psnr.toFixed(2)} -> ${after.psnr.toFixed(2)} dB, ${minutes} min this run\n`,
    );
  },

  /**
   * The encoder refined against the frozen (grown) decoder, anchored to its own posterior means so
   * the latent space the UNet generates in stays put (`scaling_factor` is kept). The folder's
   * encoder is replaced only when the pair reconstructs the held-out images better. The anchor is
   * the folder's encoder when the run starts (after a first run, the refined one), and a new encoder
   * makes the next unet/controlnet run encode its training scenes again (the cache is keyed by it).
   */
  async 'vae-encoder'(o) {
    const steps = o.steps ?? 3000;
    const started = performance.now();
    const encoderPath = join(o.out, 'vae_encoder', 'model.onnx');
    const decoderPath = join(o.out, 'vae_decoder', 'model.onnx');
    const encoder = new Uint8Array(await readFile(encoderPath));
    const decoder = new Uint8Array(await readFile(decoderPath));
    const { scaling_factor: scalingFactor } = JSON.parse(
      await readFile(join(o.out, 'vae_encoder', 'config.json'), 'utf8'),
    ) as { scaling_factor: number };
    const initialWeights = await readOnnxWeights(encoderPath);
    const decoderWeights = await readOnnxWeights(decoderPath);
    const current = resnetsPerBlock(initialWeights, 'encoder');
    const encoderResnets = o.encoderResnets ?? current;
    if (!Number.isInteger(encoderResnets) || encoderResnets < current) {
      throw new RangeError(
        `--encoder-resnets must be a whole number of at least ${current} (the folder's encoder has ${current} per level)`,
      );
    }
    const architecture: VaeArchitecture = {
      ...TINY_VAE,
      decoderResnetsPerBlock: resnetsPerBlock(decoderWeights, 'decoder'),
      encoderResnetsPerBlock: encoderResnets,
    };
    const before = await evaluateVae({ encoder, decoder }, worldImages, { count: 64, size: 128 });
    log(
      `vae-encoder: the folder's VAE reconstructs at ${before.psnr.toFixed(2)} dB; training an encoder with ${encoderResnets} resnet(s) per level (${current} in the folder)`,
    );
    const result = await trainVaeEncoder({
      initialWeights,
      anchorEncoder: encoder,
      decoderWeights,
      architecture,
      images: worldImages,
      scalingFactor,
      ...(o.anchor !== undefined ? { anchorWeight: o.anchor } : {}),
      steps,
      batch: o.batch ?? 4,
      checkpointDir: join(o.work, 'vae-encoder'),
      checkpointEvery: 100,
      resume: o.resume,
      onProgress: progressLog('vae-encoder', log),
    });
    const refined = vaeEncoderModel(result.parameters, architecture);
    const after = await evaluateVae({ encoder: refined, decoder }, worldImages, { count: 64, size: 128 });
    const shift = await encoderShift({ before: encoder, after: refined }, worldImages, scalingFactor);
    const minutes = ((performance.now() - started) / 60000).toFixed(1);
    if (after.psnr <= before.psnr) {
      log(
        `vae-encoder: ${result.step} steps reach ${after.psnr.toFixed(2)} dB, no better than ${before.psnr.toFixed(2)}; the folder keeps its encoder (${minutes} min this run)`,
      );
      return;
    }
    await writeVaePart(o.out, 'vae_encoder', refined, scalingFactor, architecture);
    await mergeMetrics(o.out, {
      vae_psnr_db: Number(after.psnr.toFixed(2)),
      vae_encoder_steps: result.step,
      vae_encoder_resnets_per_block: encoderResnets,
      vae_encoder_latent_shift: Number(shift.toFixed(4)),
    });
    log(
      `vae-encoder: ${result.step} steps, held-out PSNR ${before.psnr.toFixed(2)} -> ${after.psnr.toFixed(2)} dB, posterior means moved by ${shift.toFixed(4)} rms (scaled latents, std 1), ${minutes} min this run`,
    );
  },

  /**
   * The tiny CLIP (needs the tokenizer stage): its text tower becomes text_encoder/, both towers go
   * to clip/ for the CLIP-I and CLIP-T metrics. `--steps N` with `--resume` at or below the
   * checkpoint's step only re-exports and re-evaluates.
   */
  async clip(o) {
    const steps = o.steps ?? 2000;
    const started = performance.now();
    const tokenizer = await CLIPTokenizer.fromFolder(join(o.out, 'tokenizer'));
    const a = tinyClipArchitecture(tokenizer.vocabSize);
    const result = await trainClip({
      architecture: a,
      tokenizer,
      batches: worldClipBatch,
      steps,
      batch: o.batch ?? 32,
      checkpointDir: join(o.work, 'clip'),
      checkpointEvery: 100,
      resume: o.resume,
      onProgress: progressLog('clip', log, (p) => `scale ${p.logitScale.toFixed(2)}`),
    });
    const trained = performance.now();
    const counts = clipParameterCounts(result.parameters);
    const models = clipInferenceModels(result.parameters, a, tokenizer.eosTokenId);
    const e = await evaluateClip(models, tokenizer, a);
    // the UNet cross-attends to text_encoder/: replacing it under a trained UNet would break the
    // UNet's conditioning, so then only clip/ (the metrics' model) is written unless asked
    const unetExists = existsSync(join(o.out, 'unet', 'model.onnx'));
    const textEncoder = !unetExists || o.textEncoder === true;
    await writeClip(
      o.out,
      models,
      a,
      { eosTokenId: tokenizer.eosTokenId, bosTokenId: tokenizer.bosTokenId },
      { textEncoder },
    );
    if (!textEncoder)
      process.stdout.write(
        'clip: wrote clip/ only; text_encoder/ stays, since the UNet was trained on it (--text-encoder replaces it too)\n',
      );
    await mergeMetrics(o.out, {
      clip_zeroshot_acc: Number(e.zeroShotAcc.toFixed(4)),
      clip_color_acc: Number(e.colorAcc.toFixed(4)),
      clip_caption_r1: Number(e.captionR1.toFixed(4)),
      clip_caption_r1_text_to_image: Number(e.captionR1TextToImage.toFixed(4)),
      clip_steps: result.step,
    });
    const perClass = Object.entries(e.perClassAcc)
      .map(([c, v]) => `${c} ${(100 * v).toFixed(0)}%`)
      .join(', ');
    process.stdout.write(
      `clip: ${result.step} steps, parameters: text encoder ${counts.textEncoder}, text tower ${counts.textTower}, image tower ${counts.imageTower}, total ${counts.total}; ` +
        `logit scale ${models.logitScale.toFixed(2)}\n` +
        `clip held-out: zero-shot class ${(100 * e.zeroShotAcc).toFixed(1)}% (${e.images} images), colour ${(100 * e.colorAcc).toFixed(1)}%, ` +
        `caption R@1 image->text ${(100 * e.captionR1).toFixed(0)}% text->image ${(100 * e.captionR1TextToImage).toFixed(0)}% (${e.pairs} pairs)\n` +
        `clip per class: ${perClass}\n` +
        `clip: training ${((trained - started) / 60000).toFixed(1)} min, export + evaluation ${((performance.now() - trained) / 60000).toFixed(1)} min this run\n`,
    );
  },
};

/**
 * With `--train-text-encoder` the run trains the text encoder with the UNet, in its own checkpoint
 * folder (unet-text/), a fresh run starting from the folder's UNet and text encoder at a tenth of the
 * UNet's first learning rate; it writes text_encoder/model.onnx too (clip/ keeps the CLIP text tower).
 */
STAGES.unet = async (o) => {
  const steps = o.steps ?? 6000;
  const started = performance.now();
  const joint = o.trainTextEncoder === true;
  const tokenizer = joint ? await CLIPTokenizer.fromFolder(join(o.out, 'tokenizer')) : undefined;
  const text = tokenizer ? tinyClipArchitecture(tokenizer.vocabSize).text : undefined;
  // --layers-per-block beyond the folder's grows the folder's UNet and trains on from there
  const folderArchitecture = await tinyUnetArchitecture(o.out);
  const architecture =
    o.layersPerBlock !== undefined ? { ...TINY_UNET, layersPerBlock: o.layersPerBlock } : folderArchitecture;
  const grow = layoutSuffix(architecture) !== layoutSuffix(folderArchitecture);
  const folderUnet = async () => {
    const weights = unetWeightsOnly(
      await readOnnxWeights(join(o.out, 'unet', 'model.onnx')),
      folderArchitecture,
    );
    if (!grow) return weights;
    log(
      `unet: grows the folder's UNet from ${layoutName(folderArchitecture)} to ${layoutName(architecture)}`,
    );
    return growUnetWeights(weights, folderArchitecture, architecture);
  };
  // a joint or grown run starts from the folder's UNet and adds to its counts; a plain one counts
  // all of its own (from scratch or its checkpoint)
  const fromFolder = grow || text !== undefined;
  const stepsKey = joint ? 'unet_text_encoder_steps' : 'unet_steps';
  const grown = layoutSuffix(architecture) !== '';
  const checkpointDir = join(o.work, `${joint ? 'unet-text' : 'unet'}${layoutSuffix(architecture)}`);
  const before = await stepsBefore({
    checkpointDir,
    metricsDir: o.out,
    resume: o.resume,
    base: {
      [stepsKey]: fromFolder ? 'folder' : 'zero',
      ...(grown ? { unet_layers_grown_steps: fromFolder && !grow ? 'folder' : 'zero' } : {}),
    },
    warn: log,
  });
  const result = await trainUnet({
    modelDir: o.out,
    steps,
    batch: o.batch ?? 16,
    architecture,
    checkpointDir,
    checkpointEvery: 100,
    resume: o.resume,
    ...(o.regional !== undefined ? { regionalShare: o.regional } : {}),
    ...(o.subjectWeight !== undefined ? { subjectWeight: o.subjectWeight } : {}),
    ...(o.personShare !== undefined ? { personShare: o.personShare } : {}),
    ...(o.contrast !== undefined ? { contrast: o.contrast } : {}),
    ...(o.captionDropout !== undefined ? { captionDropout: o.captionDropout } : {}),
    ...(o.datasetSize !== undefined ? { datasetSize: o.datasetSize } : {}),
    ...(fromFolder ? { initialWeights: await folderUnet() } : {}),
    ...(text
      ? {
          lr: 1e-4,
          textEncoder: {
            architecture: text,
            weights: await readOnnxWeights(join(o.out, 'text_encoder', 'model.onnx')),
          },
        }
      : {}),
    log,
    onProgress: progressLog(joint ? 'unet+text' : 'unet', log),
  });
  const isText = (p: { name: string }) => p.name.startsWith('text_model.');
  const unetEma = result.ema.filter((p) => !isText(p));
  await writeUnet(o.out, unetInferenceModel(unetEma, { architecture, residuals: true }), { architecture });
  if (text && tokenizer) {
    await writeFileAtomic(
      join(o.out, 'text_encoder', 'model.onnx'),
      textEncoderInferenceModel(result.ema.filter(isText), text, tokenizer.eosTokenId),
    );
  }
  await writeModelIndex(o.out);
  await mergeMetrics(o.out, {
    [stepsKey]: before[stepsKey] + result.step,
    ...(grown ? { unet_layers_grown_steps: before.unet_layers_grown_steps + result.step } : {}),
    unet_parameters: unetParameterCount(unetEma),
    ...(o.regional ? { unet_regional_share: o.regional } : {}),
    ...(o.subjectWeight ? { unet_subject_weight: o.subjectWeight } : {}),
    ...(o.personShare ? { unet_person_share: o.personShare } : {}),
    ...(o.contrast ? { unet_contrast: o.contrast } : {}),
  });
  log(
    `unet${joint ? ' with the text encoder' : ''}: ${result.step} steps, ${unetParameterCount(unetEma)} UNet parameters, last loss ${result.lastLoss.toFixed(4)}, ${((performance.now() - started) / 60000).toFixed(1)} min this run`,
  );
};

/** 'layers_per_block 1' or 'layers_per_block [2,2,1]', for logs. */
function layoutName(a: UnetArchitecture): string {
  return `layers_per_block ${JSON.stringify(a.layersPerBlock ?? 1)}`;
}

/**
 * Needs the unet stage: the ControlNet starts from (and feeds) the shipped UNet's weights, or,
 * when the UNet grew since the folder's ControlNet was trained, from that ControlNet grown alike.
 */
STAGES.controlnet = async (o) => {
  const steps = o.steps ?? 1500;
  const started = performance.now();
  const architecture = await tinyUnetArchitecture(o.out);
  const unetWeights = unetWeightsOnly(await readOnnxWeights(join(o.out, 'unet', 'model.onnx')), architecture);
  // after the UNet grew, a fresh run starts from the folder's ControlNet grown the same way
  const controlFile = join(o.out, 'controlnet', 'model.onnx');
  const controlArchitecture = await tinyUnetArchitecture(o.out, 'controlnet');
  const grow =
    !o.resume && existsSync(controlFile) && layoutSuffix(controlArchitecture) !== layoutSuffix(architecture);
  if (grow)
    log(
      `controlnet: grows the folder's ControlNet from ${layoutName(controlArchitecture)} to ${layoutName(architecture)}`,
    );
  // a grown ControlNet adds to the folder's count; a fresh one starts from the UNet's weights
  const checkpointDir = join(o.work, `controlnet${layoutSuffix(architecture)}`);
  const before = await stepsBefore({
    checkpointDir,
    metricsDir: o.out,
    resume: o.resume,
    base: { controlnet_steps: grow ? 'folder' : 'zero' },
    warn: log,
  });
  const result = await trainControlNet({
    modelDir: o.out,
    unetWeights,
    architecture,
    ...(grow
      ? {
          initialWeights: growControlNetWeights(
            await readOnnxWeights(controlFile),
            controlArchitecture,
            architecture,
            IMAGE_SIDE / LATENT_SIDE,
          ),
        }
      : {}),
    steps,
    batch: o.batch ?? 8,
    checkpointDir,
    checkpointEvery: 50,
    resume: o.resume,
    ...(o.captionDropout !== undefined ? { captionDropout: o.captionDropout } : {}),
    ...(o.datasetSize !== undefined ? { datasetSize: o.datasetSize } : {}),
    log,
    onProgress: progressLog('controlnet', log),
  });
  await writeControlNet(
    o.out,
    controlNetInferenceModel(result.parameters, { architecture }),
    unetWeights,
    architecture,
  );
  await writeModelIndex(o.out);
  await mergeMetrics(o.out, { controlnet_steps: before.controlnet_steps + result.step });
  log(
    `controlnet: ${result.step} steps, last loss ${result.lastLoss.toFixed(4)}, ${((performance.now() - started) / 60000).toFixed(1)} min this run`,
  );
};

/** The class-segmentation U-Net: the judge of the figures below, and the base of a cast's SAL model. */
STAGES.segmentation = async (o) => {
  await mergeMetrics(o.out, await runSegmentationStage({ ...o, log }));
};

/**
 * The judge's figures for the whole folder (needs every other stage): writes them to metrics.json
 * and the sample grid to docs/tiny-model-samples.png. `--steps` here is the sampling step count.
 */
STAGES.evaluate = async (o) => {
  const sd = await StableDiffusion.load(o.out, new Runtime());
  const settings = {
    steps: o.steps ?? REQUEST_DEFAULTS.steps,
    guidanceScale: o.guidance ?? REQUEST_DEFAULTS.guidanceScale,
    scaffolding: REQUEST_DEFAULTS.scaffoldingSteps,
  };
  const counts = o.sweep ? { t2i: 52, pose: 12, msp: 5 } : { t2i: 200, pose: 50, msp: 20 };
  log(
    `evaluate: ${settings.steps} DDIM steps, guidance ${settings.guidanceScale}; ${JSON.stringify(counts)}`,
  );
  const result = await evaluateTinyModel({
    sd,
    settings,
    counts,
    ...(o.referenceJudge ? { referenceJudgeDir: resolve(o.referenceJudge) } : {}),
    log,
  });
  const perClass = Object.entries(result.perClass)
    .map(([c, v]) => {
      const misses = Object.entries(v.readAs).map(([read, n]) => `${n} ${read}`);
      return `${c} ${v.found}/${v.images} (colour ${v.color}${misses.length ? `; read as ${misses.join(', ')}` : ''})`;
    })
    .join(', ');
  log(`evaluate per class: ${perClass}`);
  const posePerClass = Object.entries(result.posePerClass)
    .map(
      ([c, v]) =>
        `${c} ${(v.iou / v.images).toFixed(3)} (any class ${(v.anyClassIou / v.images).toFixed(3)})`,
    )
    .join(', ');
  if (posePerClass) log(`evaluate pose per class (mean IoU): ${posePerClass}`);
  if (result.referenceFigures)
    log(`evaluate with the reference judge ${o.referenceJudge}: ${JSON.stringify(result.referenceFigures)}`);
  if (o.sweep) {
    log(
      `evaluate (sweep, nothing written): ${JSON.stringify(result.figures)} in ${(result.seconds / 60).toFixed(1)} min`,
    );
    return;
  }
  await mergeMetrics(o.out, {
    ...result.figures,
    eval_steps: settings.steps,
    eval_guidance: settings.guidanceScale,
  });
  const grid = imageGrid([
    result.samples.t2i.slice(0, 8),
    result.samples.t2i.slice(8, 13),
    result.samples.poseControl,
    result.samples.pose,
    [...result.samples.msp.slice(0, 4), ...result.samples.baseline.slice(0, 4)],
  ]);
  await mkdir(join(REPO, 'docs'), { recursive: true });
  await writeFileAtomic(join(REPO, 'docs', 'tiny-model-samples.png'), await encodePng(grid));
  log(
    `evaluate: ${JSON.stringify(result.figures)} in ${(result.seconds / 60).toFixed(1)} min; grid in docs/tiny-model-samples.png`,
  );
};

async function main(): Promise<number> {
  const parsed = parseTrainArgs(process.argv.slice(2), {
    out: join(REPO, 'native-models', 'weights', 'tiny-sd'),
    work: join(REPO, '.tmp', 'tiny'),
  });
  if ('error' in parsed) {
    process.stderr.write(`train:tiny: ${parsed.error}\n`);
    return 2;
  }
  const o = { ...parsed.options, out: resolve(parsed.options.out), work: resolve(parsed.options.work) };
  await mkdir(o.out, { recursive: true });
  await mkdir(o.work, { recursive: true });
  const run = STAGES[parsed.stage];
  if (!run) throw new Error(`train:tiny: the ${parsed.stage} stage has no recipe`);
  await run(o);
  return 0;
}

process.exitCode = await main();
