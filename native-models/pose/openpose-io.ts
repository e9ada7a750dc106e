/**
 * File IO for OpenPose poses (Node only; the pure model is in `openpose.ts`).
 *
 * @example
 * ```ts
 * import { readPose, writePoseJson } from './openpose-io.js';
 * import { isPoseDocument, mirrorPerson, renderOpenPose } from './openpose.js';
 *
 * const pose = await readPose('panel-3.json', { width: 768, height: 512 });
 * if (isPoseDocument(pose)) await writePoseJson('panel-3-mirrored.json', mirrorPerson(pose, 0));
 * const control = isPoseDocument(pose) ? renderOpenPose(pose, 768, 512) : pose;
 * ```
 */
import { readFile } from 'node:fs/promises';
import { extname } from 'node:path';
import { readImageFile } from '../image/image.js';
import type { RgbImage } from '../image/image.js';
import { encodePng } from '../image/png.js';
import { writeFileAtomic } from '../io/atomic-write.js';
import {
  OpenPoseFormatError,
  openPoseImageWarning,
  parseOpenPoseJson,
  renderOpenPose,
  toOpenPoseJson,
} from './openpose.js';
import type { ParseOpenPoseOptions, PoseDocument, RenderOpenPoseOptions } from './openpose.js';

/** Extensions read as OpenPose images (the ControlNet input itself). */
export const POSE_IMAGE_EXTENSIONS: readonly string[] = Object.freeze(['.png', '.jpg', '.jpeg', '.webp']);

export interface ReadPoseOptions extends ParseOpenPoseOptions {
  /**
   * Receives warnings, e.g. an image that does not look like an OpenPose rendering. Default:
   * `process.emitWarning(message, 'OpenPoseWarning')`.
   */
  onWarning?: (message: string) => void;
}

/**
 * Reads a pose file by extension:
 * - `.json`: OpenPose JSON, parsed with {@link parseOpenPoseJson} (`options` are passed on) into a
 *   {@link PoseDocument};
 * - `.png`, `.jpg`, `.jpeg`, `.webp`: an already rendered OpenPose image, returned as RGB to be used as the
 *   ControlNet input directly (transparency is flattened onto black). If it does not look like an
 *   OpenPose rendering (mostly black), `onWarning` is called; it is still returned.
 *
 * Tell the two apart with `isPoseDocument`.
 *
 * @throws OpenPoseFormatError for invalid JSON or keypoints (the message starts with the path),
 *   ImageDecodeError for unreadable images, Error for other extensions; file-system errors propagate.
 */
export async function readPose(
  path: string,
  options: ReadPoseOptions = {},
): Promise<PoseDocument | RgbImage> {
  const ext = extname(path).toLowerCase();
  if (ext === '.json') {
    const text = await readFile(path, 'utf8');
    let json: unknown;
    try {
      json = JSON.parse(text) as unknown;
    } catch (err) {
      throw new OpenPoseFormatError(`${path} is not valid JSON (${(err as Error).message})`, { cause: err });
    }
    try {
      return parseOpenPoseJson(json, options);
    } catch (err) {
      if (err instanceof OpenPoseFormatError)
        throw new OpenPoseFormatError(`${path}: ${err.message}`, { cause: err });
      throw err;
    }
  }
  if (POSE_IMAGE_EXTENSIONS.includes(ext)) {
    const image = await readImageFile(path, { background: [0, 0, 0] });
    const warning = openPoseImageWarning(image, path);
    if (warning !== undefined) {
      (options.onWarning ?? ((message: string) => process.emitWarning(message, 'OpenPoseWarning')))(warning);
    }
    return image;
  }
  throw new Error(
    `cannot read a pose from "${path}": use a .json OpenPose file or an OpenPose image (${POSE_IMAGE_EXTENSIONS.join(', ')})`,
  );
}

/**
 * Writes a document as OpenPose JSON ({@link toOpenPoseJson}, pretty-printed), atomically.
 *
 * @example
 * ```ts
 * await writePoseJson('panel-3.json', doc);
 * ```
 */
export async function writePoseJson(path: string, doc: PoseDocument): Promise<void> {
  await writeFileAtomic(path, `${JSON.stringify(toOpenPoseJson(doc), null, 2)}\n`);
}

export interface WritePosePngOptions extends RenderOpenPoseOptions {
  /** Output width; default the document's width. */
  width?: number;
  /** Output height; default the document's height. */
  height?: number;
}

/**
 * Renders a document with `renderOpenPose` and writes it as a PNG, atomically.
 *
 * @example
 * ```ts
 * await writePosePng('panel-3-pose.png', doc, { width: 512, height: 512 });
 * ```
 */
export async function writePosePng(
  path: string,
  doc: PoseDocument,
  options: WritePosePngOptions = {},
): Promise<void> {
  const { width = doc.width, height = doc.height, ...render } = options;
  const image = renderOpenPose(doc, width, height, render);
  await writeFileAtomic(path, await encodePng(image));
}
