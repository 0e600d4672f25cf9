// @ts-check
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

export default tseslint.config(
  { ignores: ['dist/**', 'node_modules/**', 'kura-data/**', 'test-output/**', '.dependency-cruiser.cjs', 'bench/gen-dataset.mjs'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    files: ['**/*.ts'],
    rules: {
      '@typescript-eslint/no-explicit-any': 'error',
      '@typescript-eslint/ban-ts-comment': 'error',
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_' }],
      'no-control-regex': 'off',
    },
  },
  {
    // The layering rules of STYLE.md, enforced here and again by dependency-cruiser.
    files: ['gateway/storage/**/*.ts'],
    rules: {
      'no-restricted-imports': ['error', { patterns: ['**/dav/**', '**/policy/**', 'express', 'passport*', '../server.js'] }],
    },
  },
  {
    files: ['agent/**/*.ts'],
    rules: { 'no-restricted-imports': ['error', { patterns: ['**/gateway/**', 'express'] }] },
  },
  {
    files: ['browse/**/*.ts'],
    rules: { 'no-restricted-imports': ['error', { patterns: ['**/gateway/**', '**/agent/**', '**/cli/**', 'express'] }] },
  },
  {
    files: ['common/**/*.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        { patterns: ['**/gateway/**', '**/agent/**', '**/cli/**', '**/browse/**', '**/format/**', '**/admin-ui/**'] },
      ],
    },
  },
  {
    files: ['test/**/*.ts'],
    rules: { 'no-restricted-syntax': ['error', { selector: "MemberExpression[property.name='only']", message: 'no .only in tests' }] },
  },
);
