#!/usr/bin/env node
// The `keelson` executable. Node >= 24 runs the TypeScript sources directly (type stripping);
// `npx keelson` puts the project's Node 24 (the `node` devDependency) first on PATH.
import '../src/main.ts';
