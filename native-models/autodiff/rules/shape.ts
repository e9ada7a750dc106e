/** Gradient rules: shape ops (being written). */
export {};
