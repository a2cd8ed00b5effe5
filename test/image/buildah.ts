// Building and running the Dockerfile without a Docker engine (there is none on these machines,
// and no registry image can be pulled): Debian's buildah builds as root with chroot isolation
// and the vfs storage driver; the `FROM` image is a local stand-in for node:24-bookworm-slim
// assembled here from a Debian root filesystem (mmdebstrap) and the Node 24 binary this
// repository already installs (the `node` package), plus the machine's npm.
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, readFileSync, realpathSync } from 'node:fs';
import { chmod, copyFile, cp, mkdir, mkdtemp, rename, rm, symlink, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';

const exec = promisify(execFile);

/** buildah/podman with the storage driver that works without kernel overlay support here. */
const STORAGE = ['--storage-driver', 'vfs'];
const SUITE = 'bookworm';
const BASE_NAME = 'localhost/keelson-test-node';
const CA_BUNDLE = '/etc/ssl/certs/ca-certificates.crt';

export async function run(command: string, args: string[], options: { timeoutMs?: number } = {}): Promise<string> {
  try {
    const { stdout } = await exec(command, args, { maxBuffer: 64 * 1024 * 1024, timeout: options.timeoutMs ?? 15 * 60_000 });
    return stdout;
  } catch (error) {
    const e = error as { stdout?: string; stderr?: string; message: string };
    throw new Error(`${command} ${args.join(' ')} failed: ${e.message}\n${e.stdout ?? ''}\n${e.stderr ?? ''}`.slice(0, 20_000), { cause: error });
  }
}

export const buildah = (args: string[], options?: { timeoutMs?: number }) => run('buildah', [...STORAGE, ...args], options);

export function assertTools(): void {
  const missing = ['buildah', 'podman', 'mmdebstrap', 'unshare', 'chroot'].filter(
    (tool) => !['/usr/bin', '/usr/sbin', '/bin', '/sbin'].some((dir) => existsSync(path.join(dir, tool))),
  );
  if (missing.length > 0 || process.getuid?.() !== 0) {
    throw new Error(
      `The image test needs root and ${missing.length ? missing.join(', ') : 'its tools'}: apt-get install buildah podman mmdebstrap ` +
        '(npm test installs them when run as root).',
    );
  }
}

/** The node binary of the `node` npm package (this repository's Node 24), not a wrapper script. */
function nodeBinary(): string {
  const require = createRequire(import.meta.url);
  return realpathSync(path.join(path.dirname(require.resolve('node/package.json')), 'bin', 'node'));
}

/** The machine's npm (the `node` package brings none): the folder of the npm on PATH. */
async function npmFolder(): Promise<string> {
  const npmBin = (await run('sh', ['-c', 'command -v npm'])).trim();
  return path.dirname(path.dirname(realpathSync(npmBin)));
}

function sha256(file: string): string {
  return createHash('sha256').update(readFileSync(file)).digest('hex');
}

/**
 * The stand-in's name: one per content (Node binary, npm, the machine's CA bundle) and month, so
 * Debian updates are picked up without rebuilding it on every run.
 */
async function baseKey(): Promise<string> {
  const npm = await npmFolder();
  const parts = [SUITE, sha256(nodeBinary()), (JSON.parse(readFileSync(path.join(npm, 'package.json'), 'utf8')) as { version: string }).version,
    existsSync(CA_BUNDLE) ? sha256(CA_BUNDLE) : 'no-ca', new Date().toISOString().slice(0, 7)];
  return createHash('sha256').update(parts.join('\n')).digest('hex').slice(0, 16);
}

async function imageExists(name: string): Promise<boolean> {
  return (await buildah(['images', '--quiet', '--noheading', '--filter', `reference=${name}`]).catch(() => '')).trim().length > 0;
}

/**
 * A local image standing in for node:24-bookworm-slim: Node and npm in /usr/local, as there. It
 * also carries the machine's CA bundle and an npmrc naming it, because npm here must trust the
 * machine's TLS-inspecting proxy (npm ci in the build fails with SELF_SIGNED_CERT_IN_CHAIN
 * otherwise). The root filesystem tarball is cached across runs; the imported image is reused
 * while it is in buildah's storage.
 */
export async function ensureBaseImage(log: (line: string) => void): Promise<string> {
  const key = await baseKey();
  const name = `${BASE_NAME}:${key}`;
  // earlier keys' images: drop them, storage is not free
  for (const line of (await buildah(['images', '--noheading', '--format', '{{.Name}}:{{.Tag}}', '--filter', `reference=${BASE_NAME}`]).catch(() => '')).split('\n')) {
    const other = line.trim();
    if (other && other !== name) await buildah(['rmi', other]).catch(() => undefined);
  }
  if (await imageExists(name)) return name;

  const cacheDir = path.join(os.homedir(), '.cache', 'keelson', 'image-test');
  const tarball = path.join(cacheDir, `node-base-${key}.tar`);
  if (!existsSync(tarball)) {
    log(`assembling the stand-in for node:24-bookworm-slim (mmdebstrap ${SUITE}; cached in ${cacheDir})`);
    await mkdir(cacheDir, { recursive: true });
    const work = await mkdtemp(path.join(os.tmpdir(), 'keelson-image-base-'));
    try {
      const root = path.join(work, 'rootfs');
      await run('mmdebstrap', ['--variant=minbase', '--quiet', SUITE, root]);
      await rm(path.join(root, 'var', 'lib', 'apt', 'lists'), { recursive: true, force: true });
      await mkdir(path.join(root, 'var', 'lib', 'apt', 'lists', 'partial'), { recursive: true });
      await copyFile(nodeBinary(), path.join(root, 'usr', 'local', 'bin', 'node'));
      await chmod(path.join(root, 'usr', 'local', 'bin', 'node'), 0o755);
      await cp(await npmFolder(), path.join(root, 'usr', 'local', 'lib', 'node_modules', 'npm'), { recursive: true });
      await symlink('../lib/node_modules/npm/bin/npm-cli.js', path.join(root, 'usr', 'local', 'bin', 'npm'));
      if (existsSync(CA_BUNDLE)) {
        await mkdir(path.join(root, 'etc', 'ssl', 'certs'), { recursive: true });
        await copyFile(CA_BUNDLE, path.join(root, CA_BUNDLE));
        await mkdir(path.join(root, 'usr', 'local', 'etc'), { recursive: true });
        await writeFile(path.join(root, 'usr', 'local', 'etc', 'npmrc'), `cafile=${CA_BUNDLE}\n`);
      }
      // mmdebstrap's own tarball cannot take appended files (import refuses duplicate paths)
      await run('tar', ['-C', root, '-cf', `${tarball}.part`, '.']);
      await rename(`${tarball}.part`, tarball);
    } finally {
      await rm(work, { recursive: true, force: true });
    }
  }
  log(`importing ${tarball} as ${name}`);
  await run('podman', [...STORAGE, 'import', tarball, name]);
  return name;
}

export interface ImageConfig {
  readonly User?: string;
  readonly ExposedPorts?: Record<string, unknown>;
  readonly Entrypoint?: string[];
  readonly Cmd?: string[];
  readonly Env?: string[];
  readonly WorkingDir?: string;
}

export async function imageConfig(image: string): Promise<ImageConfig> {
  const inspected = JSON.parse(await buildah(['inspect', '--type', 'image', image])) as { OCIv1: { config: ImageConfig } };
  return inspected.OCIv1.config;
}

/** The image's size in bytes, as `buildah images` reports it (uncompressed). */
export async function imageSize(image: string): Promise<number> {
  const out = await buildah(['images', '--noheading', '--format', '{{.Size}}', '--filter', `reference=${image}`]);
  const match = /([\d.]+)\s*(B|kB|KB|MB|GB)/.exec(out);
  if (!match) throw new Error(`no size for ${image} in "${out}"`);
  const factor = { B: 1, kB: 1e3, KB: 1e3, MB: 1e6, GB: 1e9 }[match[2] as 'B'];
  return Number(match[1]) * factor;
}
