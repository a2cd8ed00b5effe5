// Lint runs as part of `npm test`. Type-aware rules are left to `tsc --noEmit`, which the same
// command runs; this keeps lint fast on a 2-core machine.
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

export default tseslint.config(
  { ignores: ['node_modules/**', '.keelson/**', 'test-artifacts/**', 'bench/results/**', 'src/ui/static/vendor/**'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      '@typescript-eslint/consistent-type-imports': 'error',
      'no-console': 'off',
    },
  },
  {
    // machines/ is pure: the statechart must not reach for I/O (machines/README.md). The list names
    // the I/O packages keelson depends on; keep it in step with package.json.
    files: ['machines/**/*.ts'],
    rules: {
      'no-restricted-imports': ['error', {
        patterns: [{
          group: ['node:*', 'pg', 'slonik', '@slonik/*', '@kubernetes/*', 'simple-git', 'express', '../src/*', '../src/**'],
          message: 'machines/ is pure: effects are provided by the runtime.',
        }],
      }],
    },
  },
);
