/**
 * What a user does with a shipped kquant (the npm package or the single executable) on the demo
 * checkpoint, with the exit codes scripts rely on. Shared by the two distribution tests so both
 * artifacts are held to the same behaviour.
 */
import { copyFileSync, existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { expect } from "vitest";
import type { RunResult } from "./run.js";

export const REPO = fileURLToPath(new URL("../../", import.meta.url));
export const DEMO_SOURCE = join(REPO, "fixtures/demo/tiny-llama.safetensors");
export const PACKAGE_VERSION = (JSON.parse(readFileSync(join(REPO, "package.json"), "utf8")) as { version: string }).version;

/** Runs kquant with these arguments in the work folder, NO_COLOR=1 set. */
export type Kquant = (...args: string[]) => Promise<RunResult>;

interface InspectedTensor {
  name: string;
  dtype: string;
  shape: number[];
}

const ESC = "\x1b";
/** An SGR sequence: what colors and styles text (cursor moves are not color). */
const SGR = /\x1b\[[0-9;]*m/;

/** Copies the demo into `dir` and runs the workflow there; every output is checked for ESC bytes. */
export async function checkDemoWorkflow(kquant: Kquant, dir: string): Promise<void> {
  copyFileSync(DEMO_SOURCE, join(dir, "demo.safetensors"));
  const outputs: string[] = [];
  const ok = async (...args: string[]): Promise<RunResult> => {
    const r = await kquant(...args);
    outputs.push(r.stdout, r.stderr);
    expect(r.stderr, `kquant ${args.join(" ")}`).toBe("");
    expect(r.code, `kquant ${args.join(" ")}`).toBe(0);
    return r;
  };
  const inspect = async (file: string): Promise<Map<string, InspectedTensor>> => {
    const report = JSON.parse((await ok("inspect", file, "--json")).stdout) as { tensors: InspectedTensor[] };
    return new Map(report.tensors.map((t) => [t.name, t]));
  };

  expect((await ok("--version")).stdout.trim()).toBe(`kquant ${PACKAGE_VERSION} (Keras 3.15.1)`);
  await checkHelp(ok);

  const original = await inspect("demo.safetensors");
  expect(original.size).toBeGreaterThan(0);

  await ok("quantize", "demo.safetensors", "--int8", "-o", "demo.int8.safetensors");
  expect(existsSync(join(dir, "demo.int8.safetensors"))).toBe(true);

  // llm-compressor's preset on a model folder: a compressed-tensors folder with its index and quantization_config
  mkdirSync(join(dir, "demo-model"));
  copyFileSync(DEMO_SOURCE, join(dir, "demo-model", "model.safetensors"));
  writeFileSync(join(dir, "demo-model", "config.json"), '{"model_type": "llama"}');
  await ok("quantize", "demo-model", "--scheme", "fp8_dynamic", "--ignore", "lm_head", "-o", "demo-fp8", "-q");
  const qc = (JSON.parse(readFileSync(join(dir, "demo-fp8", "config.json"), "utf8")) as { quantization_config: { format: string } }).quantization_config;
  expect(qc.format).toBe("float-quantized");
  expect((await inspect("demo-fp8/model.safetensors")).get("model.layers.0.mlp.up_proj.weight")?.dtype).toBe("F8_E4M3");
  // kquant's documented layout: matrices become int8 with a per-channel `<name>_scale`, rank-1 tensors stay.
  const quantized = await inspect("demo.int8.safetensors");
  for (const [name, t] of original) {
    const q = quantized.get(name);
    expect(q, name).toBeDefined();
    expect(q!.shape, name).toEqual(t.shape);
    if (t.shape.length >= 2) {
      expect(q!.dtype, name).toBe("I8");
      expect(quantized.get(`${name}_scale`)?.dtype, name).toBe("F32");
    } else {
      expect(q!.dtype, name).toBe(t.dtype);
    }
  }
  outputs.push((await ok("inspect", "demo.int8.safetensors")).stdout);

  expect((await ok("verify", "demo.int8.safetensors", "--against", "demo.safetensors")).stdout).toMatch(/^OK: /m);

  // int8 cannot reach 200 dB (8 bits give at most ~50): the check fails, and the failing tensors are named.
  const failed = await kquant("verify", "demo.int8.safetensors", "--against", "demo.safetensors", "--min-sqnr", "200");
  outputs.push(failed.stdout, failed.stderr);
  expect(failed.code).toBe(1);
  const matrix = [...original.values()].find((t) => t.shape.length >= 2)!.name;
  expect(failed.stdout).toMatch(new RegExp(`^FAIL ${matrix.replace(/\./g, "\\.")} `, "m"));
  expect(failed.stderr).toMatch(/^kquant: demo\.int8\.safetensors: tensor ".*": verify failed for \d+ tensor\(s\)/);

  await ok("dequantize", "demo.int8.safetensors", "-o", "demo.f32.safetensors");
  const restored = await inspect("demo.f32.safetensors");
  expect([...restored.keys()].sort()).toEqual([...original.keys()].sort());
  for (const [name, t] of original) {
    expect(restored.get(name)!.shape, name).toEqual(t.shape);
    expect(restored.get(name)!.dtype, name).toBe(t.shape.length >= 2 ? "F32" : t.dtype);
  }

  // Bad input and bad usage: exit 2, one line on stderr naming the problem.
  const missing = await kquant("inspect", "missing.safetensors");
  outputs.push(missing.stdout, missing.stderr);
  expect(missing.code).toBe(2);
  expect(missing.stderr).toMatch(/^kquant: missing\.safetensors: .+\n$/);
  const unknown = await kquant("quantize", "demo.safetensors", "--int9");
  outputs.push(unknown.stdout, unknown.stderr);
  expect(unknown.code).toBe(2);
  expect(unknown.stderr).toContain("--int9");
  const noMode = await kquant("frobnicate");
  outputs.push(noMode.stdout, noMode.stderr);
  expect(noMode.code).toBe(2);

  const all = outputs.join("");
  expect(all.length).toBeGreaterThan(1000);
  expect(all.includes(ESC), "NO_COLOR=1 output contains an ESC byte").toBe(false);
}

/** The top-level help lists every command with examples, and so does each command's own help. */
async function checkHelp(ok: (...args: string[]) => Promise<RunResult>): Promise<void> {
  const top = (await ok("--help")).stdout;
  expect(top).toContain("Examples:");
  const commandsSection = top.split(/^Commands:$/m)[1]!.split(/^\S/m)[0]!;
  const commands = [...commandsSection.matchAll(/^ {2}([a-z][a-z-]*)/gm)].map((m) => m[1]!).filter((c) => c !== "help");
  expect(commands).toEqual(expect.arrayContaining(["quantize", "inspect", "verify", "dequantize"]));
  for (const command of commands) {
    const help = (await ok(command, "--help")).stdout;
    expect(help, `${command} --help`).toMatch(new RegExp(`^Examples:\\n {2}kquant ${command} `, "m"));
  }
}

/**
 * Under a terminal the progress bar moves the cursor, but with NO_COLOR=1 nothing is colored.
 * The bar's blocks must be there: proof that the terminal-only path ran at all.
 */
export function expectNoColor(output: string): void {
  expect(output, "no progress bar drawn: the run did not see a terminal").toMatch(/[\u2588\u2591]/);
  expect(SGR.test(output), `color escape in: ${JSON.stringify(output.slice(0, 200))}`).toBe(false);
}
