/**
 * Renders a scene (a GenerationRequest plus the files it references) with the MSP composite
 * pipeline, and the baselines it is compared against with the same seed and settings:
 * plain text-to-image with the global prompt, and ControlNet alone when the scene has a pose.
 *
 * @example
 * const scene = await resolveScene('panels/picnic/scene.json');
 * const result = await renderScene(sd, scene, { onProgress });
 * await writeFile('panel.png', await encodeRenderPng(result.image, result.request));
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { readImageFile, resizeImage, type RgbImage } from '../image/image.js';
import { encodePng, formatA1111Parameters } from '../image/png.js';
import {
  checkSize,
  planSteps,
  serializeGenerationRequest,
  withSeed,
  type ResolvedScene,
  type SeededGenerationRequest,
} from '../msp/request.js';
import { readSegmentMap, segmentMasks } from '../msp/segment-map.js';
import { readPose } from '../pose/openpose-io.js';
import { isPoseDocument, renderOpenPose } from '../pose/openpose.js';
import {
  generateComposite,
  type CompositeOptions,
  type CompositeProgress,
  type CompositeResult,
  type LatentGuide,
} from './msp.js';
import { loadSegmentationModel, SalGuidance } from './sal.js';
import type { StableDiffusion } from './stable-diffusion.js';

export class SceneError extends Error {
  override name = 'SceneError';
}

export interface RenderSceneOptions {
  onProgress?: (p: CompositeProgress) => void;
  previewEvery?: number;
  signal?: AbortSignal;
  /** Segmentation model folder for SAL (default: `segmentation/` in the model folder). */
  segmentationDir?: string;
}

export interface SceneRender extends CompositeResult {
  /** The request with its seed and size filled in: saved beside the image, enough to reproduce it. */
  request: SeededGenerationRequest;
  warnings: string[];
}

/** What a scene resolves to before the denoising loop: every input checked, nothing rendered. */
export interface PreparedScene {
  request: SeededGenerationRequest;
  composite: Omit<CompositeOptions, 'onProgress' | 'signal' | 'previewEvery'>;
  warnings: string[];
  sal?: SalGuidance;
}

/** Checks a resolved scene against the model and turns it into composite options. */
export async function prepareScene(
  sd: StableDiffusion,
  scene: ResolvedScene,
  options: RenderSceneOptions = {},
): Promise<PreparedScene> {
  // 1. Request: seed and size
  const size = sd.sizes.defaultImageSize;
  const request = withSeed({
    ...scene.request,
    width: scene.request.width ?? size,
    height: scene.request.height ?? size,
  }) as SeededGenerationRequest & { width: number; height: number };
  if (request.width === undefined || request.height === undefined) {
    throw new SceneError('width and height: required, because the model configs give no default image size');
  }
  checkSize(request, sd.sizes.vaeScaleFactor);
  const { width, height } = request;
  const plan = planSteps(request);
  const [lw, lh] = [width / sd.sizes.vaeScaleFactor, height / sd.sizes.vaeScaleFactor];

  // 2. Segment map -> masks at latent resolution (segments in request order, background last)
  const map = await readSegmentMap(scene.files.segmentMap, `segmentMap (${scene.request.segmentMap})`);
  const masks = await segmentMasks(map, request.segments, request.backgroundColor, {
    width,
    height,
    latentWidth: lw,
    latentHeight: lh,
  });
  const segments = [
    ...request.segments.map((s, j) => ({ prompt: s.prompt, mask: masks.masks[j] })),
    { prompt: request.backgroundPrompt, mask: masks.masks[masks.masks.length - 1] },
  ];

  // 3. Pose -> OpenPose image at the render size
  let controlImage: RgbImage | undefined;
  if (scene.files.pose) {
    if (!sd.model.components.controlnet) {
      throw new SceneError(
        `pose: ${sd.name} has no ControlNet (controlnet/model.onnx), so it cannot follow a pose`,
      );
    }
    const pose = await readPose(scene.files.pose);
    if (isPoseDocument(pose)) controlImage = renderOpenPose(pose, width, height);
    else {
      if (pose.width !== width || pose.height !== height) {
        throw new SceneError(
          `pose: the OpenPose image is ${pose.width}x${pose.height}, the panel is ${width}x${height}`,
        );
      }
      controlImage = pose;
    }
  }

  // 4. Scaffolding -> an image at the render size
  let scaffold: RgbImage | undefined;
  if (request.scaffolding && 'image' in request.scaffolding && scene.files.scaffoldImage) {
    const image = await readImageFile(scene.files.scaffoldImage).catch((e: unknown) => {
      throw new SceneError(`scaffolding.image: ${(e as Error).message}`);
    });
    scaffold =
      image.width === width && image.height === height ? image : await resizeImage(image, width, height);
  } else if (request.scaffolding && 'color' in request.scaffolding) {
    const hex = request.scaffolding.color;
    const rgb = [1, 3, 5].map((i) => parseInt(hex.slice(i, i + 2), 16));
    const data = new Uint8Array(width * height * 3);
    for (let i = 0; i < data.length; i++) data[i] = rgb[i % 3];
    scaffold = { width, height, data };
  }

  // 5. SAL: a segmentation model that knows every subject segment's subject
  let sal: SalGuidance | undefined;
  let guide: LatentGuide | undefined;
  if (request.sal.weight > 0) {
    const dir = options.segmentationDir ?? join(sd.model.dir, 'segmentation');
    if (!existsSync(join(dir, 'model.onnx'))) {
      throw new SceneError(
        `sal.weight: SAL needs a segmentation model, and ${dir} has none (train one for the cast, or set sal.weight to 0)`,
      );
    }
    const seg = await loadSegmentationModel(dir);
    const subjects = request.segments.flatMap((s, j) =>
      s.subject ? [{ className: s.subject, mask: segments[j].mask, index: j }] : [],
    );
    for (const s of subjects) {
      if (!seg.classes.includes(s.className)) {
        throw new SceneError(
          `segments[${s.index}].subject: '${s.className}' does not exist in the segmentation model (it knows ${seg.classes.join(', ')})`,
        );
      }
    }
    if (subjects.length === 0)
      throw new SceneError('sal.weight: SAL needs at least one segment bound to a subject');
    sal = await SalGuidance.create(sd, seg, { width, height, subjects });
    const g = sal;
    guide = { steps: new Set(plan.salSteps), weight: request.sal.weight, gradient: (x0) => g.gradient(x0) };
  }

  return {
    request,
    warnings: masks.warnings,
    ...(sal ? { sal } : {}),
    composite: {
      prompt: request.prompt,
      negativePrompt: request.negativePrompt,
      segments,
      steps: request.steps,
      scheduler: request.scheduler,
      guidanceScale: request.guidanceScale,
      seed: request.seed,
      width,
      height,
      scaffoldingSteps: plan.scaffoldingSteps,
      globalDiffuserSteps: plan.globalDiffuserSteps,
      globalDiffuserWeight: request.globalDiffuserWeight,
      ...(scaffold ? { scaffold } : {}),
      ...(controlImage ? { controlImage, controlnetScale: request.controlnetScale } : {}),
      ...(guide ? { guide } : {}),
    },
  };
}

export async function renderScene(
  sd: StableDiffusion,
  scene: ResolvedScene,
  options: RenderSceneOptions = {},
): Promise<SceneRender> {
  const prepared = await prepareScene(sd, scene, options);
  try {
    const result = await generateComposite(sd, {
      ...prepared.composite,
      ...(options.onProgress ? { onProgress: options.onProgress } : {}),
      ...(options.signal ? { signal: options.signal } : {}),
      previewEvery: options.previewEvery ?? 0,
    });
    return { ...result, request: prepared.request, warnings: prepared.warnings };
  } finally {
    await prepared.sal?.dispose();
  }
}

export type BaselineName = 'text-to-image' | 'controlnet';

/**
 * The paper's comparisons with the same seed and settings: the global prompt alone over the whole
 * image (its single-prompt "DreamBooth" row) and, when the scene has a pose, the same with ControlNet.
 */
export async function renderBaselines(
  sd: StableDiffusion,
  prepared: Pick<PreparedScene, 'composite'>,
  options: Pick<RenderSceneOptions, 'signal'> = {},
): Promise<Partial<Record<BaselineName, CompositeResult>>> {
  const c = prepared.composite;
  const full = new Float32Array(c.segments[0].mask.length).fill(1);
  const base = {
    ...c,
    segments: [{ prompt: c.prompt, mask: full }],
    scaffoldingSteps: 0,
    globalDiffuserSteps: 0,
    ...(options.signal ? { signal: options.signal } : {}),
  };
  delete base.guide;
  delete base.scaffold;
  const { controlImage, ...plain } = base;
  const out: Partial<Record<BaselineName, CompositeResult>> = {
    'text-to-image': await generateComposite(sd, plain),
  };
  if (controlImage) out.controlnet = await generateComposite(sd, { ...plain, controlImage });
  return out;
}

/** The PNG of a render: `parameters` (AUTOMATIC1111 layout) and `msp:request` (the exact request JSON). */
export async function encodeRenderPng(
  image: RgbImage,
  request: SeededGenerationRequest,
  model: string,
): Promise<Uint8Array> {
  const parameters = formatA1111Parameters({
    prompt: request.prompt,
    negativePrompt: request.negativePrompt,
    steps: request.steps,
    sampler: request.scheduler,
    guidanceScale: request.guidanceScale,
    seed: request.seed,
    width: image.width,
    height: image.height,
    model,
    extra: {
      'MSP segments': request.segments.length,
      'Scaffolding steps': planSteps(request).scaffoldingSteps,
      'Global diffuser steps': request.globalDiffuserSteps,
    },
  });
  return encodePng(image, { parameters, 'msp:request': serializeGenerationRequest(request) });
}
