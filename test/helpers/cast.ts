/** A two-subject cast of the identity set for cast-training tests. */
import type { RgbImage } from '../../native-models/image/image.js';
import type { Cast } from '../../native-models/personalize/cast-file.js';
import { identityReferenceImages } from '../../native-models/world/identity.js';

/** Three reference images of identity-set subject `index` (world renders at 128x128). */
export function identityReferences(index: number): RgbImage[] {
  return identityReferenceImages(index)
    .slice(0, 3)
    .map((scene) => scene.image);
}

/** The comic man (sks) and the ginger cat (zwx), three pictures each. */
export const PAIR_CAST: Cast = {
  name: 'pair',
  subjects: [
    { name: 'Captain', identifier: 'sks', classNoun: 'cartoon man', images: identityReferences(0) },
    { name: 'Mog', identifier: 'zwx', classNoun: 'cat', images: identityReferences(4) },
  ],
};
