import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // Each file boots its own embedded PostgreSQL; argon2 hashing is deliberately slow.
    testTimeout: 30_000,
    hookTimeout: 60_000,
  },
});
