#!/usr/bin/env node
// Thin launcher, CommonJS (bin/package.json) so that Node compiles the CLI bundle once: an ES
// module importing it would first have the whole bundle lexed for its exports. The CLI is one
// bundled file (npm run build / prepare; scripts/bundle.mjs), which loads several times faster
// than the module graph it is built from.
require("../dist/kquant.cjs");
