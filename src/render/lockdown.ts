// The second wall of the render process. sandbox.ts keeps templates from reaching JavaScript; if a
// template ever got past it (a nunjucks bug not yet known), this leaves little to reach: no way to
// make a function from a string through any function's `constructor`, no access to Node's
// built-in modules or native bindings through `process`, no signals to other processes, no
// environment, no `fetch`. Node's permission model (renderer.ts starts the process with it) is the
// wall below: no file outside keelson's code, no child process, no worker, no addon.
// It runs after the process has loaded every module it needs, so nothing keelson uses goes missing.
//
// Hazard: it changes globals of the process it runs in; lockDown() refuses to run in a process
// without the permission model (keelson's main process never has it).
// Not covered: code that already runs can still `import()` a built-in such as node:net; Node 24's
// permission model does not restrict the network.

function disabled(what: string): () => never {
  return () => {
    throw new Error(`${what} is disabled in the render process.`);
  };
}

/** Prototypes whose `constructor` compiles source text into a function. */
function functionPrototypes(): object[] {
  return [
    Function.prototype,
    Object.getPrototypeOf(async function () {}) as object,
    Object.getPrototypeOf(function* () {}) as object,
    Object.getPrototypeOf(async function* () {}) as object,
  ];
}

/** The members of `process` that reach outside the render process. */
export const PROCESS_MEMBERS = ['binding', '_linkedBinding', 'dlopen', 'getBuiltinModule', 'kill', 'abort', 'chdir', 'umask', 'setuid', 'setgid', 'seteuid', 'setegid', 'setgroups', 'initgroups', 'loadEnvFile', 'reallyExit', '_kill'] as const;

/** Network globals a process rendering files has no use for. */
export const NETWORK_GLOBALS = ['fetch', 'WebSocket', 'EventSource', 'XMLHttpRequest'] as const;

export function lockDown(): void {
  if (!process.permission) throw new Error('lockDown() disables process and Function for its whole process; run it in a render process only (started with --permission).');
  for (const proto of functionPrototypes()) {
    Object.defineProperty(proto, 'constructor', { value: disabled('Creating functions from text'), writable: false, configurable: false, enumerable: false });
  }
  // first: replacing these lazily loaded globals loads Node's fetch, which patches process
  const globals = globalThis as unknown as Record<string, unknown>;
  for (const name of NETWORK_GLOBALS) {
    if (name in globals) Object.defineProperty(globals, name, { value: undefined, writable: false, configurable: false });
  }
  const proc = process as unknown as Record<string, unknown>;
  for (const member of PROCESS_MEMBERS) {
    if (member in proc && typeof proc[member] === 'function') Object.defineProperty(proc, member, { value: disabled(`process.${member}`), writable: false, configurable: false });
  }
  Object.defineProperty(globals, 'eval', { value: disabled('eval'), writable: false, configurable: false });
  // the process is started with an empty environment already; freezing keeps it empty
  Object.defineProperty(proc, 'env', { value: Object.freeze({}), writable: false, configurable: false });
}
