/** Gradient rules: normalization ops (being written). */
export {};
