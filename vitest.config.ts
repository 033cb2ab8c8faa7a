import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    // Suites that start servers or spawn the CLI use temp dirs and free ports, so files run in parallel.
    fileParallelism: true,
  },
});
