// `npm run db:migrate` applies pending migrations; `npm run db:rollback` reverts the last one.
import { loadConfig, loadDotEnv } from '../config.js';
import { openDatabase } from './client.js';

const command = process.argv[2];
if (command !== 'up' && command !== 'down') {
  console.error('usage: tsx src/db/cli.ts up|down');
  process.exit(2);
}
loadDotEnv();
const config = loadConfig();
const database = await openDatabase({ url: config.databaseUrl, pgliteDir: config.pgliteDir });
try {
  if (command === 'up') {
    await database.migrate();
    console.log('migrations applied');
  } else {
    const tag = await database.rollback();
    console.log(tag ? `rolled back ${tag}` : 'nothing to roll back');
  }
} finally {
  await database.close();
}
