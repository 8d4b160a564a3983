/** Runs the real CLI entry point in-process, capturing what it prints and its exit code. */
import { vi } from "vitest";
import { main } from "../../src/cli/main.js";

export const DEMO = "fixtures/demo/tiny-llama.safetensors";

export async function kquant(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  let stdout = "";
  let stderr = "";
  const out = vi.spyOn(process.stdout, "write").mockImplementation((chunk: string | Uint8Array) => {
    stdout += String(chunk);
    return true;
  });
  const err = vi.spyOn(process.stderr, "write").mockImplementation((chunk: string | Uint8Array) => {
    stderr += String(chunk);
    return true;
  });
  try {
    const code = await main(["node", "kquant", ...args]);
    return { code, stdout, stderr };
  } finally {
    out.mockRestore();
    err.mockRestore();
  }
}
