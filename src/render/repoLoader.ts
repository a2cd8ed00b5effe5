// A nunjucks loader confined to one ops repo root. Template names are root-relative posix paths;
// `./x` and `../x` in `{% include %}`/`{% import %}`/`{% extends %}` resolve against the
// including file. Every name goes through resolveInRoot, so nothing outside the root (or in
// .git) is ever read, symlinks included.
import { readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import type { ILoader, LoaderSource } from 'nunjucks';
import { KeelsonError, TerminalError } from '../errors.ts';
import { displayPath, resolveInRoot, type RepoRoot } from './safePath.ts';

export class RepoLoader implements ILoader {
  readonly root: RepoRoot;
  /**
   * nunjucks wraps whatever a loader throws into its own TemplateError (class lost, message
   * prefixed), so the first refusal is kept here and rethrown as is by the renderer.
   */
  violation: KeelsonError | null = null;

  constructor(root: RepoRoot) {
    this.root = root;
  }

  isRelative(name: string): boolean {
    return name.startsWith('./') || name.startsWith('../');
  }

  resolve(from: string, to: string): string {
    // Stays a relative name: an escape shows up as a leading `..` and is refused in getSource.
    return path.posix.normalize(path.posix.join(path.posix.dirname(from), to));
  }

  getSource(name: string): LoaderSource {
    try {
      const file = resolveInRoot(this.root, name, 'template');
      if (!statSync(file.abs).isFile()) {
        throw new TerminalError(`The template ${JSON.stringify(displayPath(this.root, file.rel))} is not a file. Include files, not directories.`, {
          code: 'render_path_missing',
        });
      }
      return { src: readFileSync(file.abs, 'utf8'), path: file.rel, noCache: true };
    } catch (error) {
      // A missing template is nunjucks' business: `{% include "x" ignore missing %}` must work,
      // and otherwise nunjucks reports "template not found" with the including file's location.
      if (error instanceof KeelsonError && error.code === 'render_path_missing') return null as unknown as LoaderSource;
      if (error instanceof KeelsonError) this.violation ??= error;
      throw error;
    }
  }
}
