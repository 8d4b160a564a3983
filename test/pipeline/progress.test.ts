import { Writable } from "node:stream";
import { describe, expect, it } from "vitest";
import { startProgress } from "../../src/pipeline/progress.js";

/** A terminal of `columns` columns that keeps what is drawn on it. */
function terminal(columns: number): NodeJS.WriteStream & { text: () => string } {
  let out = "";
  const s = new Writable({
    write(chunk, _enc, done) {
      out += String(chunk);
      done();
    },
  }) as unknown as NodeJS.WriteStream & { text: () => string };
  Object.assign(s, { isTTY: true, columns, cursorTo: () => true, clearLine: () => true, moveCursor: () => true, text: () => out });
  return s;
}

// The drawn lines, control sequences removed.
const linesOf = (text: string) =>
  text
    .replace(/\x1b\[[0-9;?]*[A-Za-z]/g, "\n")
    .split(/[\r\n]/)
    .filter((l) => l.trim() !== "");

describe("the progress bar", () => {
  for (const columns of [60, 80, 200]) {
    it(`fits a ${columns}-column terminal, numbers whole, the tensor name shortened from its start`, async () => {
      const stream = terminal(columns);
      const p = await startProgress(3 * 1024 * 1024 * 1024, { stream });
      p.advance(1024 * 1024 * 1024, "model.layers.31.self_attn.very_long_projection_name.weight");
      p.stop();
      const lines = linesOf(stream.text()).filter((l) => l.includes("%"));
      expect(lines.length).toBeGreaterThan(0);
      for (const l of lines) expect(l.length).toBeLessThanOrEqual(columns);
      const last = lines.at(-1)!;
      expect(last).toMatch(/33% \| 1024\/3072 MiB \| \d+ MiB\/s \| ETA \S+/);
      if (columns >= 80) expect(last).toMatch(/ \| …?[a-z_.0-9]*name\.weight$/);
      if (columns === 200) expect(last).toContain("| model.layers.31.self_attn.very_long_projection_name.weight");
    });
  }

  it("is off when the stream is not a terminal", async () => {
    const stream = terminal(80);
    (stream as { isTTY: boolean }).isTTY = false;
    const p = await startProgress(100, { stream });
    p.advance(50, "x");
    p.stop();
    expect(stream.text()).toBe("");
  });
});
