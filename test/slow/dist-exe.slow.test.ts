/**
 * The single-file executable: `scripts/build-exe.mjs` builds it into a temp folder, then it is
 * copied alone into an empty folder and run there with a PATH that has no node, no npm and no
 * node_modules anywhere above it: what a machine without Node sees.
 */
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { checkDemoWorkflow, expectNoColor, PACKAGE_VERSION, REPO } from "../dist/demo-workflow.js";
import { run, runOnTerminal, userEnv } from "../dist/run.js";

const MINUTES = 60_000;

let work: string;
let exe: string;
let app: string;
/** An empty folder as the whole PATH: nothing, node included, can be found by name. */
let env: NodeJS.ProcessEnv;

beforeAll(async () => {
  work = mkdtempSync(join(tmpdir(), "kquant-dist-exe-"));
  const built = await run(process.execPath, [join(REPO, "scripts/build-exe.mjs"), join(work, "build")], {
    cwd: REPO,
    env: userEnv(),
  });
  expect(built.code, built.stderr).toBe(0);
  expect(built.stdout).toContain(`kquant ${PACKAGE_VERSION}`);

  app = join(work, "app");
  const emptyPath = join(work, "empty-path");
  mkdirSync(app);
  mkdirSync(emptyPath);
  exe = join(app, "kquant");
  copyFileSync(join(work, "build", "kquant"), exe);
  rmSync(join(work, "build"), { recursive: true });
  env = { PATH: emptyPath, HOME: app, NO_COLOR: "1", LANG: "C.UTF-8" };
}, 10 * MINUTES);

afterAll(() => {
  if (work) rmSync(work, { recursive: true, force: true });
});

describe("single-file executable (linux x64)", () => {
  it("is one executable file with no node on PATH", async () => {
    expect(statSync(exe).mode & 0o111).not.toBe(0);
    // The same PATH cannot find node: the executable is not calling out to one.
    const which = await run("/bin/sh", ["-c", "command -v node || echo none"], { cwd: app, env });
    expect(which.stdout.trim()).toBe("none");
  });

  it(
    "runs the demo workflow: --version, --help with examples, quantize, inspect, verify, dequantize, exit codes, NO_COLOR",
    async () => {
      await checkDemoWorkflow((...args) => run(exe, args, { cwd: app, env }), app);
    },
    5 * MINUTES,
  );

  it(
    "worker threads, where the build has them, write the same bytes as one thread",
    async () => {
      copyFileSync(join(REPO, "fixtures/demo/tiny-llama.safetensors"), join(app, "threads.safetensors"));
      const outputs: Buffer[] = [];
      for (const threads of ["0", "2"]) {
        const out = `threads.${threads}.safetensors`;
        const r = await run(exe, ["quantize", "threads.safetensors", "--int4", "--block-size", "32", "-q", "-o", out], {
          cwd: app,
          env: { ...env, KQUANT_THREADS: threads },
        });
        expect(r.code, r.stderr).toBe(0);
        expect(r.stderr).toBe("");
        outputs.push(readFileSync(join(app, out)));
      }
      expect(outputs[1]!.equals(outputs[0]!)).toBe(true);
    },
    MINUTES,
  );

  it(
    "draws its progress bar on a terminal without color when NO_COLOR=1",
    async () => {
      copyFileSync(join(REPO, "fixtures/demo/tiny-llama.safetensors"), join(app, "tty.safetensors"));
      const onTerminal = await runOnTerminal(`'${exe}' quantize tty.safetensors --int4 -o tty.int4.safetensors`, {
        cwd: app,
        env: { ...env, SHELL: "/bin/sh" },
      });
      expect(onTerminal.code, onTerminal.stdout).toBe(0);
      expect(onTerminal.stdout).toContain("tty.int4.safetensors");
      expectNoColor(onTerminal.stdout);
    },
    MINUTES,
  );
});
