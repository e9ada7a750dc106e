/** Gradient rules: conv ops (being written). */
export {};
