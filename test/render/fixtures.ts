// Ops repo checkouts as plain temp dirs: files and symlinks, no git needed for rendering.
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { expect } from 'vitest';
import { TerminalError, type KeelsonError } from '../../src/errors.ts';
import type { RenderInput, RenderResult } from '../../src/render/renderer.ts';

const created: string[] = [];

/** Creates a dir with `files` (path → content) and `links` (path → symlink target). */
export function makeRepo(files: Record<string, string | undefined>, links: Record<string, string | undefined> = {}): string {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'keelson-render-'));
  created.push(dir);
  for (const [file, content] of Object.entries(files)) {
    if (content === undefined) continue;
    mkdirSync(path.dirname(path.join(dir, file)), { recursive: true });
    writeFileSync(path.join(dir, file), content);
  }
  for (const [link, target] of Object.entries(links)) {
    if (target === undefined) continue;
    mkdirSync(path.dirname(path.join(dir, link)), { recursive: true });
    symlinkSync(target, path.join(dir, link));
  }
  return dir;
}

/** A file outside every repo, for escape attempts. */
export function outsideFile(content: string): string {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'keelson-outside-'));
  created.push(dir);
  const file = path.join(dir, 'secret.yaml');
  writeFileSync(file, content);
  return file;
}

export function cleanupRepos(): void {
  for (const dir of created.splice(0)) rmSync(dir, { recursive: true, force: true });
}

export const DEPLOYMENT_ID = '3f0e4c1a-8d5b-4c8e-9a51-2b7f0d6e9c11';

export function cm(name: string, data = '{}'): string {
  return `apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: ${name}\ndata: ${data}\n`;
}

/** A render input for project `api` in `prod`, rendering `root` (null: the built-in template). */
export function renderInput(root: string | null, overrides: Partial<RenderInput> = {}): RenderInput {
  return {
    root,
    basePath: '',
    manifestPath: null,
    imageRef: 'registry.example/api:1.2.3',
    project: 'api',
    environment: 'prod',
    namespace: 'api-prod',
    deploymentId: DEPLOYMENT_ID,
    valuesOverride: {},
    ...overrides,
  };
}

/** The TerminalError a render fails with (the test fails if it renders). */
export async function renderError(promise: Promise<RenderResult>): Promise<KeelsonError> {
  let result: RenderResult | undefined;
  try {
    result = await promise;
  } catch (error) {
    expect(error).toBeInstanceOf(TerminalError);
    return error as KeelsonError;
  }
  throw new Error(`expected a terminal error, rendered ${JSON.stringify(result?.objects)}`);
}
