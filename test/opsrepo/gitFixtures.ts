// Real git repositories in temp dirs, driven with the git CLI, as remotes for ops repo tests.
import { execFileSync } from 'node:child_process';
import net from 'node:net';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';

export function git(cwd: string, ...args: string[]): string {
  return execFileSync('git', args, {
    cwd,
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, GIT_CONFIG_NOSYSTEM: '1', GIT_TERMINAL_PROMPT: '0' },
  }).trim();
}

export interface OriginRepo {
  readonly dir: string;
  readonly url: string;
  /** Writes files (path → content) and commits them; returns the new sha. */
  commit(files: Record<string, string>, message?: string): string;
  head(): string;
}

export function tempDir(prefix: string): string {
  return mkdtempSync(path.join(os.tmpdir(), `keelson-${prefix}-`));
}

export function createOrigin(parent: string, name = 'origin', branch = 'main'): OriginRepo {
  const dir = path.join(parent, name);
  mkdirSync(dir, { recursive: true });
  git(dir, 'init', '--quiet', '--initial-branch', branch);
  git(dir, 'config', 'user.name', 'Keelson Test');
  git(dir, 'config', 'user.email', 'test@keelson.invalid');
  git(dir, 'config', 'commit.gpgsign', 'false');
  let counter = 0;
  const repo: OriginRepo = {
    dir,
    url: pathToFileURL(dir).href,
    commit(files, message) {
      for (const [file, content] of Object.entries(files)) {
        mkdirSync(path.dirname(path.join(dir, file)), { recursive: true });
        writeFileSync(path.join(dir, file), content);
      }
      git(dir, 'add', '--all');
      git(dir, 'commit', '--quiet', '--allow-empty', '-m', message ?? `commit ${++counter}`);
      return repo.head();
    },
    head: () => git(dir, 'rev-parse', 'HEAD'),
  };
  return repo;
}

export function removeDir(dir: string): void {
  rmSync(dir, { recursive: true, force: true });
}

/** A TCP server that accepts git:// connections and never says a word. */
export async function hangingServer(): Promise<{ port: number; connections: () => number; close: () => Promise<void> }> {
  const sockets = new Set<net.Socket>();
  let count = 0;
  const server = net.createServer((socket) => {
    count += 1;
    sockets.add(socket);
    socket.on('error', () => {});
    socket.on('close', () => sockets.delete(socket));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as net.AddressInfo).port;
  return {
    port,
    connections: () => count,
    close: async () => {
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
