/**
 * Moving pixels between the editor's rasters and files: the segment map goes to the backend as a PNG
 * (canvas.toBlob keeps opaque pixels exact; transparent ones stay transparent), and comes back through
 * createImageBitmap with color management and premultiplication off, so every region color survives
 * the round trip bit for bit.
 */
import type { FileUpload } from '../../../electron/api/contract';
import { rasterFromData } from '../editor/raster';
import type { Raster } from '../editor/raster';

/** A canvas holding the raster's pixels. */
export function rasterToCanvas(raster: Raster, into?: HTMLCanvasElement): HTMLCanvasElement {
  const canvas = into ?? document.createElement('canvas');
  if (canvas.width !== raster.width) canvas.width = raster.width;
  if (canvas.height !== raster.height) canvas.height = raster.height;
  const ctx = canvas.getContext('2d');
  if (!ctx) throw new Error('this browser cannot draw on a canvas');
  ctx.putImageData(new ImageData(new Uint8ClampedArray(raster.data), raster.width, raster.height), 0, 0);
  return canvas;
}

/** The raster as PNG bytes. */
export function encodePng(raster: Raster): Promise<Blob> {
  const canvas = rasterToCanvas(raster);
  return new Promise((resolve, reject) => {
    canvas.toBlob(
      (blob) => (blob ? resolve(blob) : reject(new Error('the segment map could not be encoded as PNG'))),
      'image/png',
    );
  });
}

/** Base64 of a blob (no `data:` prefix), for {@link FileUpload}. */
export async function blobToBase64(blob: Blob): Promise<string> {
  const bytes = new Uint8Array(await blob.arrayBuffer());
  let binary = '';
  const chunk = 0x8000;
  for (let i = 0; i < bytes.length; i += chunk) {
    binary += String.fromCharCode(...bytes.subarray(i, i + chunk));
  }
  return btoa(binary);
}

/** The segment map as an upload payload. */
export async function rasterUpload(raster: Raster): Promise<FileUpload> {
  return {
    data: await blobToBase64(await encodePng(raster)),
    mediaType: 'image/png',
    name: 'segment-map.png',
  };
}

/** A dropped or picked file as an upload payload (the backend checks that it is an image). */
export async function fileUpload(file: File): Promise<FileUpload> {
  return {
    data: await blobToBase64(file),
    mediaType: file.type || 'application/octet-stream',
    name: file.name,
  };
}

/** Loads an image file (by URL) into a raster, exactly: no color conversion, no premultiplication. */
export async function loadRaster(url: string): Promise<Raster> {
  const response = await fetch(url, { credentials: 'same-origin' });
  if (!response.ok) throw new Error(`the segment map could not be loaded (${response.status})`);
  const bitmap = await createImageBitmap(await response.blob(), {
    colorSpaceConversion: 'none',
    premultiplyAlpha: 'none',
  });
  const canvas = document.createElement('canvas');
  canvas.width = bitmap.width;
  canvas.height = bitmap.height;
  const ctx = canvas.getContext('2d', { willReadFrequently: true });
  if (!ctx) throw new Error('this browser cannot draw on a canvas');
  ctx.drawImage(bitmap, 0, 0);
  bitmap.close();
  const data = ctx.getImageData(0, 0, canvas.width, canvas.height).data;
  return rasterFromData(canvas.width, canvas.height, data);
}
