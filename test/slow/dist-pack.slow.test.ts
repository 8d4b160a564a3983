/**
 * The npm package as users get it: `npm pack` (which runs `prepare`, i.e. the build), installed
 * with --omit=dev into an empty folder, then used through `npx kquant` and as a typed library.
 * Nothing here reads the source tree except the demo weights and the repo's own tsc.
 */
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, normalize } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { checkDemoWorkflow, expectNoColor, PACKAGE_VERSION, REPO } from "../dist/demo-workflow.js";
import { run, runOnTerminal, userEnv } from "../dist/run.js";

const RUNTIME_DEPENDENCIES = ["cli-progress", "commander", "hash-wasm", "yauzl", "yazl"];
// The fixtures alone (demo weights, golden vectors) are far larger: a tarball past this ships something it should not.
// (~370 kB today: the compiled library plus the CLI's split bundles — the shell with commander, the pipeline the
// commands load, the worker, the shared errors module; it grew with the layouts, the per-backend kernels, the HTML
// report and the read-back kernels; ~490 kB with the browser page, dist/web, whose minified worker carries the
// pipeline and kernels once more: ~95 kB of the tarball.)
// The CLI, the worker, the page (dist/web) and the llm-compressor and MLX kernels: ~676 kB packed; ~694 kB with
// --scheme and --mlx in the page (its worker carries their pipelines, its picker their descriptors); ~746 kB with
// the page's pool worker (dist/web/pool-worker.js: the CLI's worker entry and kernels once more, ~52 kB); ~825 kB with
// the --scheme read-back (decompression, checks), the --scheme / --mlx dry runs and folder manifests, and MoE splitting;
// ~875 kB with the microscaling formats' SIMD modules (microscale-module.ts; each bundle carries its bytes) and the
// streamed --scheme / --mlx loop (weight-stream.ts).
const MAX_TARBALL_BYTES = 900_000;
const MINUTES = 60_000;

interface PackedFile {
  path: string;
  size: number;
}
interface PackReport {
  filename: string;
  size: number;
  entryCount: number;
  files: PackedFile[];
}

let work: string;
let pack: PackReport;
let app: string;
const env = userEnv({ NO_COLOR: "1" });

beforeAll(async () => {
  work = mkdtempSync(join(tmpdir(), "kquant-dist-pack-"));
  const packed = await run("npm", ["pack", "--json", "--pack-destination", work], { cwd: REPO, env: userEnv() });
  expect(packed.code, packed.stderr).toBe(0);
  pack = (JSON.parse(packed.stdout) as PackReport[])[0]!;

  app = join(work, "app");
  mkdirSync(app);
  writeFileSync(join(app, "package.json"), JSON.stringify({ name: "kquant-consumer", private: true, type: "module" }));
  const installed = await run(
    "npm",
    ["install", "--omit=dev", "--no-audit", "--no-fund", "--prefer-offline", join(work, pack.filename)],
    { cwd: app, env: userEnv() },
  );
  expect(installed.code, installed.stderr).toBe(0);
}, 10 * MINUTES);

afterAll(() => {
  if (work) rmSync(work, { recursive: true, force: true });
});

describe("npm pack", () => {
  it("ships the CLI launcher, the compiled library with types, and nothing else", () => {
    const paths = pack.files.map((f) => f.path);
    for (const needed of ["package.json", "bin/kquant.js", "dist/kquant.cjs", "dist/index.js", "dist/index.d.ts", "dist/cli/main.js"]) {
      expect(paths).toContain(needed);
    }
    for (const p of paths) {
      expect(p, "only bin/, dist/, package.json, README and LICENSE").toMatch(/^(bin\/|dist\/|package\.json$|README\.md$|LICENSE)/);
      expect(p, "no source maps: their sources are not shipped").not.toMatch(/\.map$/);
      expect(p, "no TypeScript sources").not.toMatch(/(?<!\.d)\.ts$/);
    }
    if (existsSync(join(REPO, "README.md"))) expect(paths).toContain("README.md");
    expect(pack.entryCount).toBe(paths.length);
    expect(pack.size).toBeLessThan(MAX_TARBALL_BYTES);
  });

  it("ships no stale build output: every compiled module has its source", () => {
    const stale = pack.files
      .map((f) => f.path)
      .filter((p) => p.startsWith("dist/") && p.endsWith(".js"))
      // dist/web/ is built from web/, the rest from src/.
      .filter((p) => !existsSync(join(REPO, p.startsWith("dist/web/") ? "" : "src", p.slice("dist/".length).replace(/\.js$/, ".ts"))));
    expect(stale, "built from sources since deleted; clean dist/ and pack again").toEqual([]);
  });

  it("every relative import in the shipped JavaScript and declarations resolves inside the package", () => {
    const root = join(app, "node_modules", "kquant");
    const unresolved: string[] = [];
    for (const { path } of pack.files.filter((f) => /\.(js|d\.ts)$/.test(f.path))) {
      const text = readFileSync(join(root, path), "utf8");
      // Static and dynamic imports, and module-relative files such as a worker's `new URL("./w.js", import.meta.url)`.
      const specifiers = /(?:from|import)\s*\(?\s*["'](\.{1,2}\/[^"']+)["']|new URL\(\s*["'](\.{1,2}\/[^"']+)["']\s*,\s*import\.meta\.url/g;
      for (const m of text.matchAll(specifiers)) {
        const specifier = m[1] ?? m[2]!;
        const target = normalize(join(dirname(path), specifier));
        const candidates = path.endsWith(".d.ts") ? [target, target.replace(/\.js$/, ".d.ts")] : [target];
        if (!candidates.some((c) => existsSync(join(root, c)))) unresolved.push(`${path} → ${specifier}`);
      }
    }
    expect(unresolved).toEqual([]);
  });
});

describe("installed from the tarball with --omit=dev", () => {
  it("brings only the five runtime dependencies (and theirs), no dev tools", () => {
    const installed = readdirSync(join(app, "node_modules")).filter((n) => !n.startsWith("."));
    expect(installed).toEqual(expect.arrayContaining(["kquant", ...RUNTIME_DEPENDENCIES]));
    for (const dev of ["typescript", "vitest", "esbuild", "postject", "@types", "vite"]) expect(installed).not.toContain(dev);
    const manifest = JSON.parse(readFileSync(join(app, "node_modules/kquant/package.json"), "utf8")) as {
      version: string;
      dependencies: Record<string, string>;
    };
    expect(manifest.version).toBe(PACKAGE_VERSION);
    expect(Object.keys(manifest.dependencies).sort()).toEqual(RUNTIME_DEPENDENCIES);
  });

  it(
    "npx kquant: --version, --help with examples, quantize, inspect, verify, dequantize, exit codes, NO_COLOR",
    async () => {
      const npxEnv = { ...env, npm_config_offline: "true" };
      await checkDemoWorkflow((...args) => run("npx", ["kquant", ...args], { cwd: app, env: npxEnv }), app);
      const onTerminal = await runOnTerminal("npx kquant quantize demo.safetensors --int4 -o tty.int4.safetensors", {
        cwd: app,
        env: npxEnv,
      });
      expect(onTerminal.code, onTerminal.stdout).toBe(0);
      expect(onTerminal.stdout).toContain("tty.int4.safetensors");
      expectNoColor(onTerminal.stdout);
    },
    5 * MINUTES,
  );

  it(
    "the library typechecks against the packed declarations and reproduces Keras's pack_int4 example",
    async () => {
      // Keras 3.15.1 docstring of keras.quantizers.pack_int4 (axis 0), and for abs_max_quantize on the
      // same numbers with value_range=(-8, 7), axis=0: the output of that Keras (jax backend).
      writeFileSync(
        join(app, "consumer.mts"),
        `import { absMaxQuantize, packInt4, type Tensor } from "kquant";

const int8: Tensor<Int8Array> = { dtype: "int8", shape: [3, 2], data: Int8Array.from([-3, 7, 2, -8, 1, 0]) };
const { packed, packedShape, origLen } = packInt4(int8, 0);

const weights: Tensor<Float32Array> = { dtype: "float32", shape: [3, 2], data: Float32Array.from([-3, 7, 2, -8, 1, 0]) };
const { values, scale } = absMaxQuantize(weights, 0, { valueRange: [-8, 7] });
const int4 = packInt4(values, 0);

console.log(JSON.stringify({
  packed: Array.from(packed.data), packedShape, origLen,
  values: Array.from(values.data), scale: Array.from(scale.data), scaleShape: scale.shape,
  int4: Array.from(int4.packed.data),
}));
`,
      );
      // A consumer's mistake must be caught: proves the types come from the package, not `any`.
      writeFileSync(
        join(app, "misuse.mts"),
        `import { packInt4 } from "kquant";
const origLen: string = packInt4({ dtype: "int8", shape: [2], data: Int8Array.from([1, 2]) }).origLen;
console.log(origLen);
`,
      );
      const tsc = join(REPO, "node_modules/typescript/bin/tsc");
      const compilerOptions = {
        strict: true,
        module: "nodenext",
        moduleResolution: "nodenext",
        target: "es2022",
        lib: ["es2022"],
        // A Node library's declarations use Node's types; consumers bring @types/node.
        typeRoots: [join(REPO, "node_modules/@types")],
        types: ["node"],
        skipLibCheck: false,
      };
      writeFileSync(join(app, "tsconfig.json"), JSON.stringify({ compilerOptions, files: ["consumer.mts"] }));
      writeFileSync(join(app, "tsconfig.misuse.json"), JSON.stringify({ compilerOptions: { ...compilerOptions, noEmit: true }, files: ["misuse.mts"] }));

      const good = await run(process.execPath, [tsc, "-p", "tsconfig.json"], { cwd: app, env });
      expect(good.code, good.stdout + good.stderr).toBe(0);
      const bad = await run(process.execPath, [tsc, "-p", "tsconfig.misuse.json"], { cwd: app, env });
      expect(bad.code).not.toBe(0);
      expect(bad.stdout).toMatch(/misuse\.mts\(2,7\): error TS2322: Type 'number' is not assignable to type 'string'/);

      const ran = await run(process.execPath, ["consumer.mjs"], { cwd: app, env });
      expect(ran.code, ran.stderr).toBe(0);
      expect(JSON.parse(ran.stdout)).toEqual({
        packed: [45, -121, 1, 0],
        packedShape: [2, 2],
        origLen: 3,
        values: [-7, 6, 5, -7, 2, 0],
        scale: [2.3333332538604736, 0.875],
        scaleShape: [1, 2],
        int4: [89, -106, 2, 0],
      });
    },
    5 * MINUTES,
  );
});
