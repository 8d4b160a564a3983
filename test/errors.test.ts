import { describe, expect, it } from "vitest";
import { KquantError } from "../src/errors.js";

describe("KquantError", () => {
  it("assembles file, tensor, what and hint in one place", () => {
    const e = new KquantError({ file: "m.safetensors", tensor: "w", what: "is broken", hint: "use --force" });
    expect(e.message).toBe('m.safetensors: tensor "w": is broken (use --force)');
    expect(e.format()).toBe('kquant: m.safetensors: tensor "w": is broken (use --force)');
    expect(e.exitCode).toBe(2);
    expect(new KquantError({ what: "bad", exitCode: 1 }).exitCode).toBe(1);
    expect(new KquantError("kernel says no").format()).toBe("kquant: kernel says no");
  });

  it("round-trips through its fields (how a worker thread sends it)", () => {
    const e = new KquantError({ file: "f", tensor: "t", what: "w", hint: "h", exitCode: 1 });
    const back = new KquantError(structuredClone(e.fields()));
    expect(back.format()).toBe(e.format());
    expect(back.exitCode).toBe(1);
  });

  it("within() adds a file and tensor only where the error names none", () => {
    const kernel = new KquantError("axis 5 is out of bounds");
    expect(kernel.within({ file: "f", tensor: "t" }).message).toBe('f: tensor "t": axis 5 is out of bounds');
    const named = new KquantError({ file: "a", what: "x" });
    expect(named.within({ file: "b", tensor: "t" }).message).toBe('a: tensor "t": x');
  });

  it("format() never cuts the message: a 500-character what is printed whole, with file, tensor and hint, on one line", () => {
    const what = `${"x".repeat(480)} END`;
    const e = new KquantError({ file: "model.safetensors", tensor: "w", what, hint: "see --help" });
    const line = e.format();
    expect(line).toBe(`kquant: model.safetensors: tensor "w": ${what} (see --help)`);
    expect(new KquantError("a\nb").format()).toBe("kquant: a b");
  });
});
