#!/usr/bin/env node
// Thin launcher: the CLI lives in the compiled package (npm run build / prepare).
import { main } from "../dist/cli/main.js";

process.exitCode = await main(process.argv);
