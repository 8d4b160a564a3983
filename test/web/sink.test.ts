/// <reference lib="dom" />
import { describe, expect, it } from "vitest";
import { removeCreated, StreamedOutputs } from "../../web/sink.js";

/** An in-memory FileSystemDirectoryHandle that logs what is made and removed; `held` files refuse removal `held` times. */
class FakeDir {
  readonly entries = new Map<string, FakeDir | "file">();
  constructor(
    readonly log: string[],
    readonly path = "",
    readonly held = new Map<string, number>(),
  ) {}
  private at(name: string) {
    return this.path ? `${this.path}/${name}` : name;
  }
  async getDirectoryHandle(name: string, o?: { create?: boolean }): Promise<FakeDir> {
    const e = this.entries.get(name);
    if (e instanceof FakeDir) return e;
    if (!o?.create) throw Object.assign(new Error(name), { name: "NotFoundError" });
    this.log.push(`mkdir ${this.at(name)}`);
    const d = new FakeDir(this.log, this.at(name), this.held);
    this.entries.set(name, d);
    return d;
  }
  async getFileHandle(name: string, o?: { create?: boolean }) {
    if (!this.entries.has(name)) {
      if (!o?.create) throw Object.assign(new Error(name), { name: "NotFoundError" });
      this.log.push(`create ${this.at(name)}`);
      this.entries.set(name, "file");
    }
    return { createWritable: async () => ({ write: async () => {}, close: async () => {}, abort: async () => {} }) };
  }
  async removeEntry(name: string): Promise<void> {
    const e = this.entries.get(name);
    if (e === undefined) throw Object.assign(new Error(name), { name: "NotFoundError" });
    const holds = this.held.get(this.at(name)) ?? 0;
    if (holds > 0 || (e instanceof FakeDir && e.entries.size > 0)) {
      this.held.set(this.at(name), holds - 1);
      throw Object.assign(new Error(name), { name: "NoModificationAllowedError" });
    }
    this.log.push(`remove ${this.at(name)}`);
    this.entries.delete(name);
  }
}

const handle = (d: FakeDir) => d as unknown as FileSystemDirectoryHandle;

describe("StreamedOutputs into a folder picked", () => {
  it("creates a folder or file only once the page has noted it (a cancel meanwhile misses nothing)", async () => {
    const log: string[] = [];
    const root = new FakeDir(log);
    const pending: (() => void)[] = [];
    const outputs = new StreamedOutputs({ kind: "folder", handle: handle(root) }, (path) => {
      log.push(`noted ${path}`);
      return new Promise<void>((resolve) => pending.push(resolve));
    });
    const sink = outputs.sinkFor("/out/model.safetensors");
    await new Promise((r) => setTimeout(r, 10));
    expect(log).toEqual(["noted out"]);
    pending.shift()!();
    await new Promise((r) => setTimeout(r, 10));
    expect(log).toEqual(["noted out", "mkdir out", "noted out/model.safetensors"]);
    pending.shift()!();
    await sink;
    expect(log).toEqual(["noted out", "mkdir out", "noted out/model.safetensors", "create out/model.safetensors"]);
  });
});

describe("removeCreated", () => {
  it("waits out a stopped worker's hold on a file, then removes it and its folder", async () => {
    const log: string[] = [];
    const root = new FakeDir(log, "", new Map([["out/model.safetensors", 5]]));
    await (await root.getDirectoryHandle("out", { create: true })).getFileHandle("model.safetensors", { create: true });
    expect(await removeCreated(handle(root), ["out", "out/model.safetensors"], 5_000)).toEqual([]);
    expect(log.slice(2)).toEqual(["remove out/model.safetensors", "remove out"]);
    expect(root.entries.size).toBe(0);
  });

  it("names what it could not remove by its deadline", async () => {
    const log: string[] = [];
    const root = new FakeDir(log, "", new Map([["out/model.safetensors", Infinity]]));
    await (await root.getDirectoryHandle("out", { create: true })).getFileHandle("model.safetensors", { create: true });
    expect(await removeCreated(handle(root), ["out", "out/model.safetensors"], 200)).toEqual(["out/model.safetensors", "out"]);
    expect(root.entries.has("out")).toBe(true);
  });
});
