/**
 * Panel layouts taken from world scenes, as an illustrator would set them up in the panel editor:
 * one painted region per subject (its box, grown a little, nearer subjects painted over farther
 * ones), a class prompt per region, the scene's caption as the global prompt, its place as the
 * background prompt, and the skeletons of its people as the pose. The embedded model's
 * evaluation and the demo story render these through the MSP pipeline.
 *
 * @example
 * const layout = layoutFromScene(generateScene(7, { size: 128, subjects: 3 }));
 * const result = await generateComposite(sd, { ...compositeFromLayout(layout, settings) });
 */
import type { RgbImage } from '../image/image.js';
import type { CompositeOptions } from '../pipelines/msp.js';
import { BACKGROUND_PHRASES } from '../world/backgrounds.js';
import { subjectPhrase } from '../world/captions.js';
import type { WorldClassName } from '../world/classes.js';
import type { ColorName } from '../world/palette.js';
import type { WorldScene } from '../world/scene.js';

export interface LayoutRegion {
  className: WorldClassName;
  color: ColorName;
  prompt: string;
  /** width x height, 1 inside the painted region. */
  pixelMask: Uint8Array;
  /** The subject's own visible pixels in the scene (for reference; not an input to generation). */
  subjectMask: Uint8Array;
}

export interface WorldLayout {
  width: number;
  height: number;
  prompt: string;
  backgroundPrompt: string;
  /** In the scene's drawing order (far to near). */
  regions: LayoutRegion[];
  /** The OpenPose rendering when the scene has skeleton-drawn subjects. */
  controlImage?: RgbImage;
}

/** Pixels a painted region extends beyond the subject's box on each side. */
const REGION_MARGIN = 3;

export function layoutFromScene(scene: WorldScene): WorldLayout {
  const { width, height } = scene.image;
  const owner = new Int16Array(width * height).fill(-1);
  scene.subjects.forEach((s, j) => {
    const x0 = Math.max(0, s.bbox.x0 - REGION_MARGIN);
    const y0 = Math.max(0, s.bbox.y0 - REGION_MARGIN);
    const x1 = Math.min(width - 1, s.bbox.x1 + REGION_MARGIN);
    const y1 = Math.min(height - 1, s.bbox.y1 + REGION_MARGIN);
    for (let y = y0; y <= y1; y++) for (let x = x0; x <= x1; x++) owner[y * width + x] = j;
  });
  const regions = scene.subjects.map((s, j) => {
    const pixelMask = new Uint8Array(width * height);
    for (let p = 0; p < pixelMask.length; p++) pixelMask[p] = owner[p] === j ? 1 : 0;
    return {
      className: s.className,
      color: s.color,
      prompt: subjectPhrase(
        {
          className: s.className,
          color: s.color,
          style: s.attributes.style,
          pose: s.pose,
          orientation: s.orientation,
        },
        'long',
      ),
      pixelMask,
      subjectMask: s.mask,
    };
  });
  const hasPose = scene.subjects.some((s) => s.keypoints !== null);
  return {
    width,
    height,
    prompt: scene.caption,
    backgroundPrompt: BACKGROUND_PHRASES[scene.background.kind],
    regions,
    ...(hasPose ? { controlImage: scene.openpose } : {}),
  };
}

/**
 * Latent-resolution masks (each latent pixel belongs to the region owning most of its pixels, or
 * to the background), the background last: what {@link CompositeOptions.segments} takes.
 */
export function layoutSegments(layout: WorldLayout, factor: number): CompositeOptions['segments'] {
  const lw = layout.width / factor;
  const lh = layout.height / factor;
  const masks = [...layout.regions.map(() => new Float32Array(lw * lh)), new Float32Array(lw * lh)];
  const counts = new Float32Array(masks.length);
  for (let ly = 0; ly < lh; ly++) {
    for (let lx = 0; lx < lw; lx++) {
      counts.fill(0);
      for (let dy = 0; dy < factor; dy++) {
        for (let dx = 0; dx < factor; dx++) {
          const p = (ly * factor + dy) * layout.width + lx * factor + dx;
          const j = layout.regions.findIndex((r) => r.pixelMask[p] === 1);
          counts[j < 0 ? masks.length - 1 : j]++;
        }
      }
      let best = masks.length - 1;
      for (let j = 0; j < masks.length; j++) if (counts[j] > counts[best]) best = j;
      masks[best][ly * lw + lx] = 1;
    }
  }
  return [
    ...layout.regions.map((r, j) => ({ prompt: r.prompt, mask: masks[j] })),
    { prompt: layout.backgroundPrompt, mask: masks[masks.length - 1] },
  ];
}
