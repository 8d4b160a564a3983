/** The `process` global as src/ uses it (env, pid, signals never sent), for the page's bundles (an esbuild inject). */
const noop = () => processShim;
export const processShim = {
  env: {} as Record<string, string | undefined>,
  pid: 1,
  platform: "browser",
  argv: [] as string[],
  versions: {} as Record<string, string>,
  getuid: undefined,
  once: noop,
  on: noop,
  off: noop,
  removeListener: noop,
  exit(code?: number): never {
    throw new Error(`process.exit(${code ?? 0}) in the page`);
  },
  cwd: () => "/",
  stderr: { isTTY: false, write: () => true },
  stdout: { isTTY: false, write: () => true },
};
export { processShim as process };
