#!/usr/bin/env node
// Thin launcher: the CLI is one bundled file (npm run build / prepare; scripts/bundle.mjs), which
// loads several times faster than the module graph it is built from.
import "../dist/kquant.cjs";
