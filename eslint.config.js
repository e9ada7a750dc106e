// @ts-check
import js from '@eslint/js';
import globals from 'globals';
import tseslint from 'typescript-eslint';

export default tseslint.config(
  { ignores: ['dist/**', 'node_modules/**', 'coverage/**', '.tmp/**'] },
  js.configs.recommended,
  ...tseslint.configs.strict,
  {
    languageOptions: { globals: { ...globals.node } },
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      '@typescript-eslint/consistent-type-imports': 'error',
      eqeqeq: ['error', 'always', { null: 'ignore' }],
    },
  },
  {
    // The renderer runs in a browser (or a sandboxed Electron window): DOM globals, no Node.
    files: ['renderer/**/*.{ts,tsx}'],
    ignores: ['renderer/*.config.ts'],
    languageOptions: { globals: { ...globals.browser } },
    rules: {
      'no-restricted-imports': [
        'error',
        {
          patterns: [
            {
              regex: '^(node:.*|fs|path|child_process)$',
              message: 'The renderer cannot use Node; go through the API.',
            },
            {
              regex: '^electron(/.*)?$',
              message: 'The renderer reaches Electron only through the preload API.',
            },
          ],
        },
      ],
    },
  },
  {
    // Only electron/main and electron/preload may import Electron; services are plain Node.
    files: ['electron/**/*.ts'],
    ignores: ['electron/main/**', 'electron/preload/**'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          patterns: [
            {
              group: ['electron', 'electron/*'],
              message: 'Only electron/main and electron/preload import Electron.',
            },
          ],
        },
      ],
    },
  },
  {
    // common/ runs everywhere (renderer, backend, worker): plain TypeScript, no platform or app imports.
    files: ['common/**/*.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          patterns: [
            { regex: '^(node:.*|fs|path|child_process)$', message: 'common/ cannot use Node.' },
            { regex: '^(electron|react|react-dom)(/.*)?$', message: 'common/ imports no platform.' },
            {
              group: ['**/electron/**', '**/renderer/**', '**/native-models/**'],
              message: 'common/ is the lowest layer; it imports nothing from the app.',
            },
          ],
        },
      ],
    },
  },
  {
    // Tests may assert that a value they just built exists.
    files: ['**/*.test.ts', 'test/**/*.ts'],
    rules: { '@typescript-eslint/no-non-null-assertion': 'off' },
  },
  {
    // Layering: native-models runs in plain Node (CLI, worker, tests); it never imports Electron or React.
    files: ['native-models/**/*.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          patterns: [
            { group: ['electron', 'electron/*'], message: 'native-models must not import Electron.' },
            { group: ['react', 'react-dom', 'react/*'], message: 'native-models must not import React.' },
            {
              group: ['**/electron/**', '**/renderer/**'],
              message: 'native-models must not import app layers.',
            },
          ],
        },
      ],
    },
  },
);
