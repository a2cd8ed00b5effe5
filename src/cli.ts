// `keelson <command>`: each command lives in src/commands/<name>.ts and exports `run`.
import { KeelsonError } from './errors.ts';

export interface Command {
  readonly summary: string;
  readonly usage: string;
  /** Resolves to the process exit code. */
  readonly run: (argv: string[]) => Promise<number>;
}

const COMMANDS: Record<string, () => Promise<Command>> = {
  serve: async () => (await import('./commands/serve.ts')).serveCommand,
  migrate: async () => (await import('./commands/migrate.ts')).migrateCommand,
  sim: async () => (await import('./commands/sim.ts')).simCommand,
  token: async () => (await import('./commands/token.ts')).tokenCommand,
  deploy: async () => (await import('./commands/client.ts')).deployCommand,
  rollback: async () => (await import('./commands/client.ts')).rollbackCommand,
  stop: async () => (await import('./commands/client.ts')).stopCommand,
  delete: async () => (await import('./commands/client.ts')).deleteCommand,
  status: async () => (await import('./commands/client.ts')).statusCommand,
  wait: async () => (await import('./commands/wait.ts')).waitCommand,
};

async function help(): Promise<string> {
  const lines = ['Usage: keelson <command> [options]', '', 'Commands:'];
  for (const [name, load] of Object.entries(COMMANDS)) {
    const command = await load().catch(() => undefined);
    if (command) lines.push(`  ${name.padEnd(10)} ${command.summary}`);
  }
  lines.push('', 'Run `keelson <command> --help` for its options.');
  return lines.join('\n');
}

export async function runCli(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (!name || name === '--help' || name === '-h' || name === 'help') {
    console.log(await help());
    return name ? 0 : 2;
  }
  if (name === '--version' || name === '-v') {
    const pkg = (await import('../package.json', { with: { type: 'json' } })).default;
    console.log(pkg.version);
    return 0;
  }
  const load = COMMANDS[name];
  if (!load) {
    console.error(`keelson: unknown command "${name}"\n\n${await help()}`);
    return 2;
  }
  const command = await load();
  if (rest.includes('--help') || rest.includes('-h')) {
    console.log(`Usage: ${command.usage}\n\n${command.summary}`);
    return 0;
  }
  try {
    return await command.run(rest);
  } catch (error) {
    if (error instanceof KeelsonError) {
      console.error(`keelson ${name}: ${error.message}`);
      return 1;
    }
    if (error instanceof TypeError && (error as { code?: string }).code?.startsWith('ERR_PARSE_ARGS')) {
      console.error(`keelson ${name}: ${error.message}\nUsage: ${command.usage}`);
      return 2;
    }
    throw error;
  }
}
