// The test database providers beyond the default (test/pg/providers.ts): a wrong name is refused,
// and testcontainers either gives a working server or says clearly why it cannot (no container
// engine answers on these machines; a developer's machine or CI with Docker gets a server).
import pg from 'pg';
import { describe, expect, it } from 'vitest';
import { startTestPostgres } from '../pg/providers.ts';

describe('test database providers', () => {
  it('refuses an unknown KEELSON_TEST_PG, naming the choices', async () => {
    await expect(startTestPostgres({ KEELSON_TEST_PG: 'sqlite' })).rejects.toThrow(
      'KEELSON_TEST_PG=sqlite is not a test database provider: use embedded, system:<major> (e.g. system:15) or testcontainers.',
    );
  });

  it('testcontainers: a server that answers, or a failure that says what is missing and what to use instead', async () => {
    const outcome = await startTestPostgres({ KEELSON_TEST_PG: 'testcontainers' }).then(
      (server) => ({ server }),
      (error: unknown) => ({ error: error as Error }),
    );
    if ('error' in outcome) {
      expect(outcome.error.message).toMatch(/^KEELSON_TEST_PG=testcontainers: no container engine answered testcontainers \(.+\)\. /);
      expect(outcome.error.message).toContain('Unset KEELSON_TEST_PG to use embedded PostgreSQL, or use KEELSON_TEST_PG=system:15.');
      return;
    }
    const client = new pg.Client({ connectionString: outcome.server.url });
    try {
      await client.connect();
      expect((await client.query('select 1 as one')).rows).toEqual([{ one: 1 }]);
    } finally {
      await client.end();
      await outcome.server.stop();
    }
  }, 180_000);
});
