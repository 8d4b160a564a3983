/** Spawning what a user would run: a command in a folder with a chosen environment. */
import { spawn } from "node:child_process";

export interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
}

export function run(command: string, args: readonly string[], opts: { cwd: string; env: NodeJS.ProcessEnv }): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { cwd: opts.cwd, env: opts.env, stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    child.stdout.setEncoding("utf8").on("data", (s: string) => (stdout += s));
    child.stderr.setEncoding("utf8").on("data", (s: string) => (stderr += s));
    child.on("error", reject);
    child.on("close", (code, signal) => {
      if (code === null) reject(new Error(`${command} ${args.join(" ")} was killed by ${signal}`));
      else resolve({ code, stdout, stderr });
    });
  });
}

/**
 * The environment a user's shell would give, minus what `npm run` and vitest add: npm_* settings
 * (an npm_config_prefix would redirect installs) and NODE_OPTIONS/VITEST hooks.
 */
export function userEnv(extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (/^(npm_|NODE_OPTIONS$|NODE_PATH$|VITEST|TEST$|FORCE_COLOR$|NO_COLOR$)/i.test(k)) continue;
    env[k] = v;
  }
  return { ...env, ...extra };
}

/** The output of a run under a pseudo-terminal (util-linux `script`), so TTY-only output shows up. */
export async function runOnTerminal(commandLine: string, opts: { cwd: string; env: NodeJS.ProcessEnv }): Promise<RunResult> {
  return run("/usr/bin/script", ["-qefc", commandLine, "/dev/null"], opts);
}
