// The embedded PostgreSQL's reaper: a tiny detached process that stops keelson's embedded
// PostgreSQL the moment keelson dies, however it dies — SIGKILL and the OOM killer included,
// where keelson itself can run no code. PostgreSQL is a separate process and would otherwise keep
// running, holding the data directory and a port, until the next keelson start stops it.
//
// How it knows: keelson holds the write end of this process's stdin. The kernel closes it when
// keelson exits for any reason, so the reaper sees end-of-file. A keelson that stopped its
// PostgreSQL itself writes "stopped" first, and the reaper just leaves.
//
// Usage (by embedded.ts only): node reaper.ts <data dir> <postmaster pid>
import { stopPostmaster } from './postmaster.ts';

const [dataDir, pidText] = process.argv.slice(2);
const pid = Number(pidText);
if (!dataDir || !Number.isInteger(pid) || pid <= 0) {
  console.error('usage: reaper.ts <data dir> <postmaster pid>');
  process.exit(2);
}

// Detached, so no terminal's Ctrl-C reaches it; a stray signal must not end it either, or the
// PostgreSQL it guards would outlive keelson after all.
for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) process.on(sig, () => {});

let said = '';
process.stdin.setEncoding('utf8');
process.stdin.on('data', (chunk: string) => (said += chunk));
// 'end' on a clean close; 'error' (e.g. EPIPE/ECONNRESET) counts as keelson gone too
let reaping = false;
const reap = async () => {
  if (reaping) return;
  reaping = true;
  if (!said.includes('stopped')) await stopPostmaster(dataDir, { pid });
  process.exit(0);
};
process.stdin.on('end', () => void reap());
process.stdin.on('error', () => void reap());
