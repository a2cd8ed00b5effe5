// `keelson serve --help` is where operators look for flags: it must name every one that
// config.ts accepts (tracks add flags to FLAG_TO_ENV; this keeps the usage text in step).
import { describe, expect, it } from 'vitest';
import { serveCommand } from '../../src/commands/serve.ts';
import { FLAG_TO_ENV } from '../../src/config.ts';

describe('keelson serve --help', () => {
  it('names every configuration flag', () => {
    const missing = Object.keys(FLAG_TO_ENV).filter((flag) => !serveCommand.usage.includes(`--${flag} `) && !serveCommand.usage.includes(`--${flag}]`));
    expect(missing).toEqual([]);
  });
});
