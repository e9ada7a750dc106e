/**
 * `msp`: the command line of MSP Studio.
 *
 *   msp inspect <model-dir> [--json]
 *   msp tokenize (--model <dir> | --tokenizer <dir>) "text" [--json]
 *   msp create-random-model <dir> [--seed N]
 *   msp train-cast <cast.json> [--model <dir>] [--out <dir>] [--steps N] [--regional X] [--resume]
 *   msp check-cast <cast-model-dir> [--scenes N] [--steps N] [--guidance X] [--sal W] [--seed N]
 *                  [--class-judge <segmentation-dir> | --no-class-judge] [--grid out.png] [--json]
 *   msp generate [--model <dir>] --prompt "..." [--negative "..."] [--steps N] [--scheduler S]
 *                [--guidance X] [--seed N] [--width W --height H] [--init-image F --strength X] [--out file.png]
 *
 * Exit codes: 0 success, 1 failure, 2 bad arguments. Errors go to stderr in one sentence.
 */
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { existsSync } from 'node:fs';
import { mkdir, readFile } from 'node:fs/promises';
import { basename, dirname, extname, join, resolve } from 'node:path';
import { createProgress, UsageError } from './terminal.js';
import { createRandomModel } from '../models/random-model.js';
import { loadModelFolder, ModelFolderError } from '../models/model-folder.js';
import { defaultModelDir, EMBEDDED_MODEL_HINT, embeddedModelDir } from '../models/default-model.js';
import { CLIPTokenizer } from '../tokenizer/clip-tokenizer.js';
import { EXECUTION_PROVIDER_CHOICES, Runtime, type ExecutionProviderChoice } from '../runtime/session.js';
import { StableDiffusion } from '../pipelines/stable-diffusion.js';
import {
  DEFAULTS,
  encodeGenerationPng,
  GenerationOptionsError,
  textToImage,
} from '../pipelines/text-to-image.js';
import { SCHEDULER_NAMES, type SchedulerName } from '../schedulers/scheduler.js';
import { readImageFile } from '../image/image.js';
import { writeFileAtomic } from '../io/atomic-write.js';
import { resolveScene, serializeGenerationRequest } from '../msp/request.js';
import { writeExampleScene } from '../msp/example-scenes.js';
import { encodeRenderPng, prepareScene, renderBaselines } from '../pipelines/render-scene.js';
import { generateComposite } from '../pipelines/msp.js';
import { DEFAULT_STORY_SETTINGS, DEMO_STORY, renderStory, type StorySettings } from '../tiny/story.js';
import { encodePng } from '../image/png.js';
import { readCastFile } from '../personalize/cast-file.js';
import { trainCast, type CastTrainingPhase } from '../personalize/cast-training.js';
import {
  checkIdentifiers,
  defaultClassJudgeDir,
  identifierCheckSceneLine,
  identifierCheckSettingsLine,
  identifierCheckSummary,
  writeIdentifierCheckGrid,
} from '../personalize/identifier-check.js';

interface Command {
  summary: string;
  usage: string;
  options: NonNullable<ParseArgsConfig['options']>;
  run(values: Record<string, string | boolean | undefined>, positionals: string[]): Promise<void>;
}

const common = {
  help: { type: 'boolean', short: 'h' },
} as const;

const runtimeOptions = {
  provider: { type: 'string' },
  threads: { type: 'string' },
} as const;

const COMMANDS: Record<string, Command> = {
  inspect: {
    summary: 'validate a model folder and print its inputs, outputs, sizes and execution provider',
    usage: 'msp inspect <model-dir> [--json] [--provider auto|cpu|cuda|dml|coreml]',
    options: { ...common, ...runtimeOptions, json: { type: 'boolean' } },
    async run(values, positionals) {
      const dir = onePositional(positionals, 'model-dir');
      const model = await loadModelFolder(dir);
      const runtime = makeRuntime(values);
      try {
        const unet = await runtime.session(model.components.unet.path);
        const report = {
          dir: model.dir,
          executionProvider: unet.executionProvider,
          ...(unet.fallbackReason ? { fallbackReason: unet.fallbackReason } : {}),
          sizes: model.sizes,
          scheduler: model.schedulerConfig,
          controlnet: model.components.controlnet ? model.controlnetResiduals : null,
          components: Object.fromEntries(
            Object.entries(model.components).map(([name, c]) => [
              name,
              { file: c.file, inputs: c.inputs, outputs: c.outputs },
            ]),
          ),
        };
        if (values.json) {
          process.stdout.write(JSON.stringify(report, null, 2) + '\n');
          return;
        }
        const dims = (s: (number | string | null)[]) => `[${s.map((d) => d ?? '?').join(', ')}]`;
        const lines = [`model folder ${model.dir}`, `execution provider: ${unet.executionProvider}`];
        if (unet.fallbackReason) lines.push(`  (fell back to cpu: ${unet.fallbackReason})`);
        const s = model.sizes;
        lines.push(
          `sizes: latent channels ${s.latentChannels}, VAE scale factor ${s.vaeScaleFactor}, scaling factor ${s.scalingFactor}, ` +
            `hidden size ${s.hiddenSize}, sequence length ${s.sequenceLength}, default image size ${s.defaultImageSize ?? 'not given'}`,
        );
        lines.push(
          `scheduler config: ${model.schedulerConfig.betaSchedule} betas ${model.schedulerConfig.betaStart}..${model.schedulerConfig.betaEnd}, ` +
            `${model.schedulerConfig.numTrainTimesteps} train steps, ${model.schedulerConfig.predictionType} prediction`,
        );
        const listed = new Map<string, string>();
        for (const [name, c] of Object.entries(model.components)) {
          const same = listed.get(c.file);
          if (same) {
            lines.push(`${name} (${c.file}): the ${same} above, which takes the ControlNet residuals itself`);
            continue;
          }
          listed.set(c.file, name);
          lines.push(`${name} (${c.file})`);
          for (const i of c.inputs) lines.push(`  in  ${i.name}: ${i.dtype} ${dims(i.shape)}`);
          for (const o of c.outputs) lines.push(`  out ${o.name}: ${o.dtype} ${dims(o.shape)}`);
        }
        process.stdout.write(lines.join('\n') + '\n');
      } finally {
        await runtime.dispose();
      }
    },
  },

  tokenize: {
    summary:
      "print a prompt's token ids and count, and warn when it is longer than the model's sequence length",
    usage: 'msp tokenize (--model <dir> | --tokenizer <dir>) "text" [--json]',
    options: {
      ...common,
      model: { type: 'string' },
      tokenizer: { type: 'string' },
      json: { type: 'boolean' },
    },
    async run(values, positionals) {
      const text = onePositional(positionals, 'text');
      if (values.model && values.tokenizer)
        throw new UsageError('give either --model or --tokenizer, not both');
      let tokenizerDir: string;
      let maxLength: number | undefined;
      if (typeof values.model === 'string') {
        const model = await loadModelFolder(values.model);
        tokenizerDir = model.tokenizerDir;
        maxLength = model.sizes.sequenceLength;
      } else if (typeof values.tokenizer === 'string') {
        tokenizerDir = values.tokenizer;
      } else {
        throw new UsageError('give --model <dir> or --tokenizer <dir>');
      }
      const tokenizer = await CLIPTokenizer.fromFolder(tokenizerDir);
      const length = maxLength ?? tokenizer.modelMaxLength;
      const full = tokenizer.encode(text);
      const ids = Array.from(full.ids);
      const tooLong = full.tokenCount > length;
      if (values.json) {
        process.stdout.write(
          JSON.stringify({ ids, count: full.tokenCount, sequenceLength: length, truncated: tooLong }) + '\n',
        );
      } else {
        process.stdout.write(
          `${JSON.stringify(ids)}\n${full.tokenCount} tokens (sequence length ${length})\n`,
        );
      }
      if (tooLong) {
        const kept = tokenizer.decode(tokenizer.encode(text, { maxLength: length, truncation: true }).ids);
        process.stderr.write(
          `warning: the prompt has ${full.tokenCount} tokens but the model reads ${length}; everything after "${kept.split(' ').slice(-4).join(' ')}" is ignored\n`,
        );
      }
    },
  },

  'create-random-model': {
    summary:
      'write a tiny random-weight model in the diffusers ONNX layout, for trying the pipeline without weights',
    usage: 'msp create-random-model <dir> [--seed N]',
    options: { ...common, seed: { type: 'string' } },
    async run(values, positionals) {
      const dir = onePositional(positionals, 'dir');
      const seed = values.seed === undefined ? undefined : intOption(String(values.seed), '--seed', 0);
      const started = Date.now();
      const out = await createRandomModel(dir, seed === undefined ? {} : { seed });
      process.stdout.write(
        `wrote a random-weight model to ${out} in ${((Date.now() - started) / 1000).toFixed(1)}s\n`,
      );
    },
  },

  render: {
    summary:
      'render a scene file (MSP composite: regions, prompts, pose, scaffold, SAL) and, with --compare, its baselines',
    usage: 'msp render <scene.json> [--model <dir>] [--out <dir>] [--compare] [--preview-every N] [--json]',
    options: {
      ...common,
      ...runtimeOptions,
      model: { type: 'string' },
      out: { type: 'string', short: 'o' },
      compare: { type: 'boolean' },
      json: { type: 'boolean' },
      quiet: { type: 'boolean', short: 'q' },
    },
    async run(values, positionals) {
      const scenePath = resolve(onePositional(positionals, 'scene.json'));
      const modelDir = typeof values.model === 'string' ? values.model : defaultModelDir();
      if (!modelDir) throw new UsageError(`--model is required: ${EMBEDDED_MODEL_HINT}`);
      const outDir = resolve(typeof values.out === 'string' ? values.out : dirname(scenePath));
      if (!existsSync(outDir)) throw new UsageError(`the --out folder ${outDir} does not exist`);
      const scene = await resolveScene(scenePath);
      const runtime = makeRuntime(values);
      try {
        const sd = await StableDiffusion.load(modelDir, runtime);
        const progress = createProgress('rendering', {
          quiet: values.quiet === true || values.json === true,
        });
        const controller = new AbortController();
        const onSigint = () => controller.abort();
        process.once('SIGINT', onSigint);
        const started = performance.now();
        const prepared = await prepareScene(sd, scene);
        let result;
        try {
          result = await generateComposite(sd, {
            ...prepared.composite,
            signal: controller.signal,
            onProgress: ({ step, totalSteps, stage }) => progress.update(step, totalSteps, stage),
          });
        } finally {
          await prepared.sal?.dispose();
          process.off('SIGINT', onSigint);
        }
        progress.done();
        // write everything only once every render succeeded
        const stem = `${basename(scenePath, extname(scenePath))}-${prepared.request.seed}`;
        const outputs: Record<string, Uint8Array | string> = {
          [`${stem}.png`]: await encodeRenderPng(result.image, prepared.request, sd.name),
          [`${stem}.json`]: serializeGenerationRequest(prepared.request),
        };
        if (values.compare) {
          const baselines = await renderBaselines(sd, prepared, { signal: controller.signal });
          for (const [name, r] of Object.entries(baselines)) {
            outputs[`${stem}-baseline-${name}.png`] = await encodeRenderPng(
              r.image,
              prepared.request,
              sd.name,
            );
          }
        }
        for (const [name, bytes] of Object.entries(outputs)) await writeFileAtomic(join(outDir, name), bytes);
        const seconds = (performance.now() - started) / 1000;
        for (const w of prepared.warnings) process.stderr.write(`warning: ${w}\n`);
        const files = Object.keys(outputs).map((n) => join(outDir, n));
        if (values.json) {
          process.stdout.write(
            JSON.stringify({
              files,
              seconds,
              unetEvaluations: result.unetEvaluations,
              salLosses: result.salLosses,
            }) + '\n',
          );
        } else {
          process.stdout.write(
            `wrote ${files.join(', ')} (seed ${prepared.request.seed}, ${seconds.toFixed(1)}s)\n`,
          );
        }
      } finally {
        await runtime.dispose();
      }
    },
  },

  'example-scene': {
    summary:
      'write an example scene folder (segment map, prompts, optional pose / scaffold / SAL) to start from',
    usage:
      'msp example-scene <dir> [--subjects 1-4] [--pose] [--scaffold color|image] [--sal W] [--size N] [--steps N]',
    options: {
      ...common,
      subjects: { type: 'string' },
      pose: { type: 'boolean' },
      scaffold: { type: 'string' },
      sal: { type: 'string' },
      size: { type: 'string' },
      steps: { type: 'string' },
    },
    async run(values, positionals) {
      const dir = onePositional(positionals, 'dir');
      const subjects =
        values.subjects === undefined ? 2 : intOption(String(values.subjects), '--subjects', 1);
      if (subjects > 4) throw new UsageError(`--subjects must be 1 to 4, got ${subjects}`);
      const scaffold = values.scaffold;
      if (scaffold !== undefined && scaffold !== 'color' && scaffold !== 'image') {
        throw new UsageError(`--scaffold must be color or image, got "${String(scaffold)}"`);
      }
      const size = values.size === undefined ? 64 : intOption(String(values.size), '--size', 8);
      const path = await writeExampleScene(dir, {
        subjects: subjects as 1 | 2 | 3 | 4,
        width: size,
        height: size,
        ...(scaffold ? { scaffold } : {}),
        ...(values.pose ? { pose: true } : {}),
        ...(values.sal !== undefined ? { sal: numberOption(String(values.sal), '--sal', 0) } : {}),
        ...(values.steps !== undefined ? { steps: intOption(String(values.steps), '--steps', 1) } : {}),
      });
      process.stdout.write(`wrote ${path}\n`);
    },
  },

  'train-cast': {
    summary: 'teach a model a cast of subjects (joint DreamBooth) and write the cast model folder',
    usage:
      'msp train-cast <cast.json> [--model <dir>] [--out <dir>] [--steps N] [--batch N] [--method full|lora] [--class-images N] [--regional X] [--segmentation-steps N] [--resume] [--json]',
    options: {
      ...common,
      ...runtimeOptions,
      model: { type: 'string' },
      out: { type: 'string' },
      steps: { type: 'string' },
      batch: { type: 'string' },
      method: { type: 'string' },
      'class-images': { type: 'string' },
      regional: { type: 'string' },
      'segmentation-steps': { type: 'string' },
      resume: { type: 'boolean' },
      json: { type: 'boolean' },
      quiet: { type: 'boolean' },
    },
    async run(values, positionals) {
      const castFile = onePositional(positionals, 'cast.json');
      const modelDir = typeof values.model === 'string' ? values.model : defaultModelDir();
      if (!modelDir) throw new UsageError(`--model is required: ${EMBEDDED_MODEL_HINT}`);
      const method = values.method;
      if (method !== undefined && method !== 'full' && method !== 'lora')
        throw new UsageError(`--method must be full or lora, got "${String(method)}"`);
      const cast = await readCastFile(castFile);
      const outDir = resolve(
        typeof values.out === 'string'
          ? values.out
          : join(dirname(resolve(castFile)), `${slug(cast.name)}-model`),
      );
      const int = (key: string, min: number) =>
        values[key] === undefined ? undefined : intOption(values[key] as string, `--${key}`, min);
      const quiet = values.quiet === true || values.json === true;
      const bars = new Map<string, ReturnType<typeof createProgress>>();
      const labels: Record<CastTrainingPhase, string> = {
        prepare: 'preparing',
        'class-images': 'class images',
        encode: 'encoding',
        unet: 'training the UNet',
        segmentation: 'training the segmentation model',
        export: 'writing',
      };
      const controller = new AbortController();
      const onSigint = () => controller.abort();
      process.once('SIGINT', onSigint);
      const result = await trainCast({
        baseModelDir: modelDir,
        cast,
        outDir,
        ...stripUndefined({
          steps: int('steps', 1),
          batch: int('batch', 1),
          classImages: int('class-images', 0),
          segmentationSteps: int('segmentation-steps', 0),
          regionalShare:
            values.regional === undefined ? undefined : shareOption(values.regional as string, '--regional'),
          method,
        }),
        resume: values.resume === true,
        signal: controller.signal,
        onProgress: (p) => {
          let bar = bars.get(p.phase);
          if (!bar) {
            bar = createProgress(labels[p.phase], { quiet });
            bars.set(p.phase, bar);
          }
          bar.update(p.step, p.totalSteps, p.loss !== undefined ? `loss ${p.loss.toFixed(4)}` : undefined);
          if (p.step === p.totalSteps) bar.done();
        },
        ...(quiet ? {} : { log: (line: string) => process.stderr.write(`${line}\n`) }),
      }).finally(() => process.off('SIGINT', onSigint));
      if (result.stoppedBy === 'cancelled') {
        process.stderr.write(
          `msp train-cast: cancelled at step ${result.unetSteps}; run again with --resume to continue\n`,
        );
        process.exitCode = 1;
        return;
      }
      if (values.json) {
        process.stdout.write(
          JSON.stringify({ out: result.outDir, seconds: result.seconds, ...result.manifest }) + '\n',
        );
      } else {
        process.stdout.write(
          `wrote ${result.outDir} (${result.manifest.subjects.map((s) => `"${s.prompt}"`).join(', ')}; ${result.unetSteps} steps, ${result.seconds.toFixed(0)}s)\n`,
        );
      }
    },
  },
  'check-cast': {
    summary:
      "measure a cast model's identifiers: the share of held-out two-subject scenes whose subjects its segmentation model finds in their own regions",
    usage:
      'msp check-cast <cast-model-dir> [--scenes N] [--steps N] [--guidance X] [--sal W] [--seed N] [--class-judge <segmentation-dir> | --no-class-judge] [--grid out.png] [--json]',
    options: {
      ...common,
      ...runtimeOptions,
      scenes: { type: 'string' },
      steps: { type: 'string' },
      guidance: { type: 'string' },
      sal: { type: 'string' },
      seed: { type: 'string' },
      grid: { type: 'string' },
      json: { type: 'boolean' },
      'class-judge': { type: 'string' },
      'no-class-judge': { type: 'boolean' },
    },
    async run(values, positionals) {
      const modelDir = onePositional(positionals, 'cast-model-dir');
      if (values['class-judge'] !== undefined && values['no-class-judge'] === true)
        throw new UsageError('--class-judge and --no-class-judge exclude each other');
      const classJudgeDir =
        typeof values['class-judge'] === 'string'
          ? resolve(values['class-judge'])
          : values['no-class-judge'] === true
            ? undefined
            : await defaultClassJudgeDir(modelDir, embeddedModelDir());
      const grid = typeof values.grid === 'string' ? resolve(values.grid) : undefined;
      if (grid && !existsSync(dirname(grid)))
        throw new UsageError(`the folder of --grid ${grid} does not exist`);
      const int = (key: string, min: number) =>
        values[key] === undefined ? undefined : intOption(values[key] as string, `--${key}`, min);
      const num = (key: string) =>
        values[key] === undefined ? undefined : numberOption(values[key] as string, `--${key}`, 0);
      const json = values.json === true;
      const controller = new AbortController();
      const onSigint = () => controller.abort();
      process.once('SIGINT', onSigint);
      const runtime = makeRuntime(values);
      try {
        const result = await checkIdentifiers({
          modelDir,
          ...stripUndefined({
            scenes: int('scenes', 1),
            steps: int('steps', 2),
            guidanceScale: num('guidance'),
            salWeight: num('sal'),
            seed: int('seed', 0),
            classJudgeDir,
          }),
          runtime,
          signal: controller.signal,
          ...(json ? {} : { onScene: (s) => process.stdout.write(`${identifierCheckSceneLine(s)}\n`) }),
        });
        if (grid) await writeIdentifierCheckGrid(result, grid);
        if (json) {
          const { images: _images, ...rest } = result;
          process.stdout.write(JSON.stringify({ ...rest, ...(grid ? { grid } : {}) }) + '\n');
        } else {
          process.stdout.write(
            [
              identifierCheckSummary(result),
              `settings: ${identifierCheckSettingsLine(result.settings)}, ${result.settings.width}x${result.settings.height} (${result.seconds.toFixed(0)}s)`,
              ...(grid ? [`wrote ${grid}`] : []),
            ].join('\n') + '\n',
          );
        }
      } finally {
        process.off('SIGINT', onSigint);
        await runtime.dispose();
      }
    },
  },
  demo: {
    summary:
      'the end-to-end demo: a three-panel story through the MSP pipeline on the embedded tiny model, and a one-page PNG',
    usage: 'msp demo [--model <dir>] [--out <folder>] [--steps N] [--guidance X] [--seed N] [--no-pose]',
    options: {
      ...common,
      ...runtimeOptions,
      model: { type: 'string' },
      out: { type: 'string', short: 'o' },
      steps: { type: 'string' },
      guidance: { type: 'string' },
      seed: { type: 'string' },
      'no-pose': { type: 'boolean' },
    },
    async run(values) {
      const started = performance.now();
      // the shipped tiny model folder, even where its model_index.json is missing (it is optional)
      const modelDir =
        typeof values.model === 'string' ? values.model : (defaultModelDir() ?? embeddedModelDir());
      const out = resolve(typeof values.out === 'string' ? values.out : 'msp-demo');
      const settings: StorySettings = {
        steps:
          values.steps !== undefined
            ? intOption(String(values.steps), '--steps', 1)
            : DEFAULT_STORY_SETTINGS.steps,
        guidanceScale:
          values.guidance !== undefined
            ? numberOption(String(values.guidance), '--guidance', 0)
            : DEFAULT_STORY_SETTINGS.guidanceScale,
        seed:
          values.seed !== undefined
            ? intOption(String(values.seed), '--seed', 0)
            : DEFAULT_STORY_SETTINGS.seed,
        pose: values['no-pose'] !== true,
      };
      const sd = await StableDiffusion.load(modelDir, makeRuntime(values));
      process.stdout.write(
        `model ${modelDir} on ${await sd.executionProvider()}; ${DEMO_STORY.length} panels, ${settings.steps} steps, guidance ${settings.guidanceScale}\n`,
      );
      const story = await renderStory(sd, settings, {
        onPanel: (i, ms) =>
          process.stdout.write(
            `panel ${i + 1}: ${DEMO_STORY[i].subjects.length} subjects, ${(ms / 1000).toFixed(1)} s\n`,
          ),
      });
      await mkdir(out, { recursive: true });
      for (const [i, panel] of story.panels.entries()) {
        await writeFileAtomic(join(out, `panel-${i + 1}.png`), await encodePng(panel.image));
      }
      await writeFileAtomic(join(out, 'page.png'), await encodePng(story.page));
      process.stdout.write(
        `wrote ${story.panels.length} panels and page.png to ${out} in ${((performance.now() - started) / 1000).toFixed(1)} s\n`,
      );
    },
  },

  generate: {
    summary: 'generate an image from a prompt (text-to-image, or image-to-image with --init-image)',
    usage:
      'msp generate [--model <dir>] --prompt "..." [--negative "..."] [--steps N] [--scheduler ' +
      SCHEDULER_NAMES.join('|') +
      '] [--guidance X] [--seed N] [--width W --height H] [--init-image F --strength X] [--preview-every N] [--out file.png] [--json]',
    options: {
      ...common,
      ...runtimeOptions,
      model: { type: 'string' },
      prompt: { type: 'string', short: 'p' },
      negative: { type: 'string', short: 'n' },
      steps: { type: 'string' },
      scheduler: { type: 'string' },
      guidance: { type: 'string' },
      seed: { type: 'string' },
      width: { type: 'string' },
      height: { type: 'string' },
      'init-image': { type: 'string' },
      strength: { type: 'string' },
      'preview-every': { type: 'string' },
      out: { type: 'string', short: 'o' },
      json: { type: 'boolean' },
      quiet: { type: 'boolean', short: 'q' },
    },
    async run(values) {
      if (typeof values.prompt !== 'string') throw new UsageError('--prompt is required');
      const scheduler = (values.scheduler ?? DEFAULTS.scheduler) as SchedulerName;
      if (!SCHEDULER_NAMES.includes(scheduler)) {
        throw new UsageError(
          `unknown scheduler "${scheduler}" for --scheduler; expected one of ${SCHEDULER_NAMES.join(', ')}`,
        );
      }
      const modelDir = typeof values.model === 'string' ? values.model : defaultModelDir();
      if (!modelDir) throw new UsageError(`--model is required: ${EMBEDDED_MODEL_HINT}`);
      const out = resolve(typeof values.out === 'string' ? values.out : 'msp-output.png');
      if (!existsSync(dirname(out))) throw new UsageError(`the folder of --out ${out} does not exist`);
      const num = (key: string, min?: number) =>
        values[key] === undefined ? undefined : numberOption(values[key] as string, `--${key}`, min);
      const options = {
        prompt: values.prompt,
        negativePrompt: typeof values.negative === 'string' ? values.negative : '',
        steps: values.steps === undefined ? undefined : intOption(values.steps as string, '--steps', 1),
        scheduler,
        guidanceScale: num('guidance', 0),
        seed: values.seed === undefined ? undefined : intOption(values.seed as string, '--seed', 0),
        width: values.width === undefined ? undefined : intOption(values.width as string, '--width', 1),
        height: values.height === undefined ? undefined : intOption(values.height as string, '--height', 1),
        strength: num('strength'),
        previewEvery:
          values['preview-every'] === undefined
            ? 0
            : intOption(values['preview-every'] as string, '--preview-every', 0),
      };
      const runtime = makeRuntime(values);
      try {
        const sd = await StableDiffusion.load(modelDir, runtime);
        const initImage =
          typeof values['init-image'] === 'string' ? await readImageFile(values['init-image']) : undefined;
        const progress = createProgress('generating', {
          quiet: values.quiet === true || values.json === true,
        });
        const started = performance.now();
        const controller = new AbortController();
        const onSigint = () => controller.abort();
        process.once('SIGINT', onSigint);
        const result = await textToImage(sd, {
          ...stripUndefined(options),
          ...(initImage ? { initImage } : {}),
          signal: controller.signal,
          onProgress: ({ step, totalSteps }) => progress.update(step, totalSteps),
        }).finally(() => process.off('SIGINT', onSigint));
        const png = await encodeGenerationPng(result.image, result.parameters);
        await writeFileAtomic(out, png);
        const seconds = (performance.now() - started) / 1000;
        progress.done();
        for (const prompt of result.truncatedPrompts) {
          process.stderr.write(
            `warning: the prompt "${prompt.slice(0, 40)}..." is longer than the model's ${sd.sizes.sequenceLength} tokens and was cut\n`,
          );
        }
        const provider = await sd.executionProvider();
        if (values.json) {
          process.stdout.write(
            JSON.stringify({
              out,
              seconds,
              executionProvider: provider,
              unetEvaluations: result.unetEvaluations,
              parameters: result.parameters,
            }) + '\n',
          );
        } else {
          process.stdout.write(
            `wrote ${out} (seed ${result.parameters.seed}, ${seconds.toFixed(1)}s on ${provider})\n`,
          );
        }
      } finally {
        await runtime.dispose();
      }
    },
  },
};

function stripUndefined<T extends object>(o: T): { [K in keyof T]: Exclude<T[K], undefined> } {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as {
    [K in keyof T]: Exclude<T[K], undefined>;
  };
}

function makeRuntime(values: Record<string, string | boolean | undefined>): Runtime {
  const provider = (values.provider ?? 'auto') as ExecutionProviderChoice;
  if (!EXECUTION_PROVIDER_CHOICES.includes(provider)) {
    throw new UsageError(
      `unknown --provider "${provider}"; expected one of ${EXECUTION_PROVIDER_CHOICES.join(', ')}`,
    );
  }
  const threads =
    values.threads === undefined ? undefined : intOption(values.threads as string, '--threads', 1);
  return new Runtime({ executionProvider: provider, ...(threads ? { intraOpNumThreads: threads } : {}) });
}

/** A folder-name form of a cast name: 'Harbour story' -> 'harbour-story'. */
function slug(name: string): string {
  return (
    name
      .toLowerCase()
      .replace(/[^a-z0-9]+/g, '-')
      .replace(/^-|-$/g, '') || 'cast'
  );
}

function onePositional(positionals: string[], name: string): string {
  if (positionals.length === 0) throw new UsageError(`missing <${name}>`);
  if (positionals.length > 1) throw new UsageError(`unexpected argument "${positionals[1]}"`);
  return positionals[0];
}

function intOption(text: string, flag: string, min: number): number {
  const v = Number(text);
  if (text.trim() === '' || !Number.isSafeInteger(v) || v < min) {
    throw new UsageError(`${flag} must be an integer >= ${min}, got "${text}"`);
  }
  return v;
}

function shareOption(text: string, flag: string): number {
  const v = numberOption(text, flag, 0);
  if (v > 1) throw new UsageError(`${flag} must be a share between 0 and 1, got ${text}`);
  return v;
}

function numberOption(text: string, flag: string, min?: number): number {
  const v = Number(text);
  if (text.trim() === '' || !Number.isFinite(v) || (min !== undefined && v < min)) {
    throw new UsageError(`${flag} must be a number${min !== undefined ? ` >= ${min}` : ''}, got "${text}"`);
  }
  return v;
}

function helpText(): string {
  const width = Math.max(...Object.keys(COMMANDS).map((k) => k.length));
  return [
    'msp: MSP Studio on the command line',
    '',
    'usage: msp <command> [options]   (msp <command> --help for its options)',
    '',
    ...Object.entries(COMMANDS).map(([k, c]) => `  ${k.padEnd(width)}  ${c.summary}`),
    '',
  ].join('\n');
}

/** Runs the CLI; returns the exit code. */
export async function main(argv: string[]): Promise<number> {
  const [verb, ...rest] = argv;
  if (verb === undefined || verb === '--help' || verb === '-h' || verb === 'help') {
    process.stdout.write(helpText());
    return verb === undefined ? 2 : 0;
  }
  if (verb === '--version') {
    const pkg = JSON.parse(await readFile(new URL('../../../package.json', import.meta.url), 'utf8')) as {
      version: string;
    };
    process.stdout.write(`${pkg.version}\n`);
    return 0;
  }
  const command = COMMANDS[verb];
  if (!command) {
    process.stderr.write(`msp: unknown command "${verb}"; run msp --help for the list\n`);
    return 2;
  }
  try {
    const { values, positionals } = parseArgs({
      args: rest,
      options: command.options,
      allowPositionals: true,
      strict: true,
    });
    if (values.help) {
      process.stdout.write(`usage: ${command.usage}\n\n${command.summary}\n`);
      return 0;
    }
    await command.run(values as Record<string, string | boolean | undefined>, positionals);
    return 0;
  } catch (e) {
    const err = e as Error & { code?: string };
    if (err instanceof UsageError || err.code?.startsWith('ERR_PARSE_ARGS')) {
      process.stderr.write(`msp ${verb}: ${err.message}\nusage: ${command.usage}\n`);
      return 2;
    }
    if (
      err instanceof GenerationOptionsError ||
      [
        'SceneError',
        'SegmentMapError',
        'RequestError',
        'OpenPoseFormatError',
        'CastError',
        'AugmentError',
        'IdentifierCheckError',
      ].includes(err.name)
    ) {
      process.stderr.write(`msp ${verb}: ${err.message}\n`);
      return 2;
    }
    if (err.name === 'AbortError') {
      process.stderr.write(`\nmsp ${verb}: cancelled; nothing was written\n`);
      return 1;
    }
    const known =
      err instanceof ModelFolderError ||
      ['ImageDecodeError', 'SessionError', 'TokenizerError'].includes(err.name);
    process.stderr.write(`msp ${verb}: ${err.message}\n`);
    if (!known && process.env.MSP_DEBUG) process.stderr.write(`${err.stack ?? ''}\n`);
    return 1;
  }
}
