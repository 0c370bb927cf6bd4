import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.{ts,tsx}'],
    environment: 'node',
    // React binding tests opt into jsdom with a `// @vitest-environment jsdom` docblock.
    restoreMocks: true,
  },
});
