import { defineConfig } from 'vitest/config';

export default defineConfig({
{% if graphql %}
  // Vite would resolve `graphql` to its ES module build and Node (for graphql-http and graphql-armor) to its
  // CommonJS one: two copies, each refusing the other's schema objects. Both now load the one Node loads.
  resolve: { alias: [{ find: /^graphql$/, replacement: 'graphql/index.js' }] },
{% endif %}
  test: {
    include: ['test/**/*.test.ts'],
    // Files in one worker share its module cache, so PGlite's WebAssembly is compiled once per worker
    // instead of once per file (~2 s each). Every file still opens and closes its own database.
    isolate: false,
    // Each file boots its own embedded PostgreSQL; argon2 hashing is deliberately slow.
    testTimeout: 30_000,
    hookTimeout: 60_000,
  },
});
