import { defineConfig } from 'drizzle-kit';

// `npm run db:generate` diffs src/db/schema.ts against the newest snapshot in drizzle/meta/.
export default defineConfig({
  dialect: 'postgresql',
  schema: './src/db/schema.ts',
  out: './drizzle',
});
