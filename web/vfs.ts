/**
 * The page's file system: what src/ reaches through node:fs and node:fs/promises, in a Web
 * Worker. The files the user picked are mounted read-only (their bytes are read by File.slice,
 * never whole); what the pipeline writes lives here as Blob parts, one per write, so a finished
 * output is a Blob the browser keeps out of the tab's JavaScript heap. Or, when the user picked a
 * destination before the run, each write goes straight to a stream to that file (streamWritesTo,
 * sink.ts), and nothing of the output stays here. The web bundle maps node:fs/promises and node:fs to this module
 * (scripts/bundle-web.mjs), so the readers, writers and pipeline of src/ run as they are.
 */
import { dirname, normalize } from "./shims/path.js";

/** A written file: its parts by position (the writers write each byte once, the safetensors header twice). */
interface Written {
  kind: "written";
  parts: Map<number, Blob>;
  size: number;
  /** Where its bytes go instead of `parts`, when the user picked a destination (sink.ts). */
  sink?: ByteSink;
}

/** Where a written file's bytes go instead of the page: a stream to the user's disk (sink.ts). */
export interface ByteSink {
  /** Writes `bytes` at `position`; the caller may reuse `bytes` once this resolves. */
  write(position: number, bytes: Uint8Array): Promise<void>;
}

/** The sink of a file being opened for writing (at `path`), or undefined to keep it here; null: none set. */
let sinkOf: ((path: string) => Promise<ByteSink | undefined>) | null = null;

/**
 * Sends the bytes of files opened for writing from now on to the sinks `of` gives (null: keep
 * every file here, as Blob parts). A file written to a sink cannot be read back until settle().
 */
export function streamWritesTo(of: ((path: string) => Promise<ByteSink | undefined>) | null): void {
  sinkOf = of;
}

/** A written file now whole at its destination: its bytes are `blob` (the file as the disk has it). */
export function settle(path: string, blob: Blob): void {
  const node = nodes.get(key(path));
  if (node?.kind !== "written") throw fsError("ENOENT", "settle", path);
  nodes.set(key(path), { kind: "written", parts: new Map([[0, blob]]), size: blob.size });
}

type Node = { kind: "dir" } | { kind: "input"; blob: Blob } | Written;

const nodes = new Map<string, Node>([["/", { kind: "dir" }]]);

/** Bytes read from mounted inputs so far (the page's progress bar). */
export let inputBytesRead = 0;

function key(path: string): string {
  const p = normalize(path.startsWith("/") ? path : `/${path}`);
  return p.length > 1 && p.endsWith("/") ? p.slice(0, -1) : p;
}

function fsError(code: string, syscall: string, path: string): Error {
  const messages: Record<string, string> = {
    ENOENT: "no such file or directory",
    EEXIST: "file already exists",
    EISDIR: "illegal operation on a directory",
    ENOTDIR: "not a directory",
    ENOTEMPTY: "directory not empty",
  };
  return Object.assign(new Error(`${code}: ${messages[code] ?? code}, ${syscall} '${path}'`), { code, syscall, path });
}

function get(path: string, syscall: string): Node {
  const node = nodes.get(key(path));
  if (node === undefined) throw fsError("ENOENT", syscall, path);
  return node;
}

function ensureParent(path: string, syscall: string): void {
  const parent = nodes.get(dirname(key(path)));
  if (parent === undefined) throw fsError("ENOENT", syscall, path);
  if (parent.kind !== "dir") throw fsError("ENOTDIR", syscall, path);
}

/** Mounts `blob` at `path` (parent folders made as needed). */
export function mount(path: string, blob: Blob): void {
  const k = key(path);
  const parts = k.split("/").filter(Boolean);
  for (let i = 1; i < parts.length; i++) {
    const dir = `/${parts.slice(0, i).join("/")}`;
    if (!nodes.has(dir)) nodes.set(dir, { kind: "dir" });
  }
  nodes.set(k, { kind: "input", blob });
}

/** Forgets every file and folder. */
export function reset(): void {
  nodes.clear();
  nodes.set("/", { kind: "dir" });
  inputBytesRead = 0;
}

/** Removes every written file (a new run starts from the inputs alone). */
export function clearWritten(): void {
  const inputs = [...nodes].filter(([, n]) => n.kind === "input") as [string, { kind: "input"; blob: Blob }][];
  reset();
  for (const [p, n] of inputs) mount(p, n.blob);
}

/** The Blob of a finished file (input or written), or undefined. */
export function blobOf(path: string): Blob | undefined {
  const node = nodes.get(key(path));
  if (node === undefined || node.kind === "dir") return undefined;
  return node.kind === "input" ? node.blob : assemble(node);
}

/** Written files (not inputs) under `dir`, in path order. */
export function writtenFiles(dir = "/"): string[] {
  const prefix = key(dir) === "/" ? "/" : `${key(dir)}/`;
  return [...nodes].filter(([p, n]) => n.kind === "written" && p.startsWith(prefix)).map(([p]) => p).sort();
}

function assemble(w: Written): Blob {
  if (w.sink !== undefined) throw new Error("web file system: a file being streamed to its destination is read back before it is whole");
  const positions = [...w.parts.keys()].sort((a, b) => a - b);
  const pieces: BlobPart[] = [];
  let at = 0;
  for (const pos of positions) {
    const part = w.parts.get(pos)!;
    // Never the case for kquant's writers, which fill every byte; zeros, as a file would read.
    if (pos > at) pieces.push(new Uint8Array(pos - at));
    pieces.push(pos < at ? part.slice(at - pos) : part);
    at = Math.max(at, pos + part.size);
  }
  return new Blob(pieces);
}

function sizeOf(node: Node): number {
  if (node.kind === "dir") return 0;
  return node.kind === "input" ? node.blob.size : node.size;
}

class Stats {
  constructor(private readonly node: Node) {}
  get size(): number {
    return sizeOf(this.node);
  }
  isFile(): boolean {
    return this.node.kind !== "dir";
  }
  isDirectory(): boolean {
    return this.node.kind === "dir";
  }
  isSymbolicLink(): boolean {
    return false;
  }
  get mtimeMs(): number {
    return 0;
  }
}

/** Reads at most this many bytes per call, so a tensor's read never holds a second copy of itself. */
const READ_SLICE = 16 * 1024 * 1024;

class FileHandle {
  constructor(
    private readonly path: string,
    private readonly writable: boolean,
  ) {}

  private node(): Node {
    return get(this.path, "read");
  }

  async read(buffer: Uint8Array, offset: number, length: number, position: number): Promise<{ bytesRead: number; buffer: Uint8Array }> {
    const node = this.node();
    if (node.kind === "dir") throw fsError("EISDIR", "read", this.path);
    const blob = node.kind === "input" ? node.blob : assemble(node);
    const end = Math.min(blob.size, position + Math.min(length, READ_SLICE));
    if (end <= position) return { bytesRead: 0, buffer };
    const bytes = new Uint8Array(await blob.slice(position, end).arrayBuffer());
    buffer.set(bytes, offset);
    if (node.kind === "input") inputBytesRead += bytes.length;
    return { bytesRead: bytes.length, buffer };
  }

  async write(buffer: Uint8Array, offset = 0, length = buffer.length - offset, position = 0): Promise<{ bytesWritten: number; buffer: Uint8Array }> {
    const node = this.node();
    if (!this.writable || node.kind !== "written") throw fsError("EBADF", "write", this.path);
    // A Blob copies the bytes now, so the caller may reuse its buffer as soon as this returns.
    const view = buffer.subarray(offset, offset + length);
    if (node.sink !== undefined) {
      // A stream takes no view of shared memory (a pool's buffers): those go in copies, a slice at a time.
      const step = view.buffer instanceof ArrayBuffer ? Math.max(length, 1) : READ_SLICE;
      for (let at = 0; at < length; at += step) {
        const part = view.subarray(at, Math.min(length, at + step));
        await node.sink.write(position + at, view.buffer instanceof ArrayBuffer ? part : part.slice());
      }
      node.size = Math.max(node.size, position + length);
      return { bytesWritten: length, buffer };
    }
    const part = new Blob([view.buffer instanceof ArrayBuffer ? (view as Uint8Array<ArrayBuffer>) : view.slice()]);
    const old = node.parts.get(position);
    if (old !== undefined && old.size !== length) throw new Error(`web file system: a rewrite of ${this.path} at ${position} changes its length`);
    node.parts.set(position, part);
    node.size = Math.max(node.size, position + length);
    return { bytesWritten: length, buffer };
  }

  async readFile(encoding?: string): Promise<Uint8Array | string> {
    return readFile(this.path, encoding);
  }

  async stat(): Promise<Stats> {
    return new Stats(this.node());
  }

  async sync(): Promise<void> {}
  async datasync(): Promise<void> {}
  async close(): Promise<void> {}
}

export async function open(path: string, flags = "r"): Promise<FileHandle> {
  const k = key(path);
  if (flags === "r") {
    get(path, "open");
    return new FileHandle(k, false);
  }
  if (flags === "wx" || flags === "w") {
    ensureParent(path, "open");
    const existing = nodes.get(k);
    if (existing !== undefined && flags === "wx") throw fsError("EEXIST", "open", path);
    if (existing?.kind === "dir") throw fsError("EISDIR", "open", path);
    const sink = sinkOf === null ? undefined : await sinkOf(k);
    nodes.set(k, { kind: "written", parts: new Map(), size: 0, ...(sink ? { sink } : {}) });
    return new FileHandle(k, true);
  }
  throw new Error(`web file system: open flags ${flags} are not supported`);
}

export async function stat(path: string): Promise<Stats> {
  return new Stats(get(path, "stat"));
}
export const lstat = stat;

export async function access(path: string): Promise<void> {
  get(path, "access");
}

export async function readFile(path: string, options?: string | { encoding?: string }): Promise<Uint8Array | string> {
  const node = get(path, "open");
  if (node.kind === "dir") throw fsError("EISDIR", "read", path);
  const blob = node.kind === "input" ? node.blob : assemble(node);
  const encoding = typeof options === "string" ? options : options?.encoding;
  if (encoding !== undefined) return blob.text();
  return new Uint8Array(await blob.arrayBuffer());
}

function children(dir: string): string[] {
  const prefix = dir === "/" ? "/" : `${dir}/`;
  return [...nodes.keys()].filter((p) => p !== dir && p.startsWith(prefix) && !p.slice(prefix.length).includes("/")).map((p) => p.slice(prefix.length));
}

export async function readdir(path: string, options?: { withFileTypes?: boolean }): Promise<unknown[]> {
  const k = key(path);
  const node = get(path, "scandir");
  if (node.kind !== "dir") throw fsError("ENOTDIR", "scandir", path);
  const names = children(k).sort();
  if (!options?.withFileTypes) return names;
  return names.map((name) => {
    const s = new Stats(nodes.get(`${k === "/" ? "" : k}/${name}`)!);
    return { name, isFile: () => s.isFile(), isDirectory: () => s.isDirectory(), isSymbolicLink: () => false };
  });
}

export async function mkdir(path: string, options?: { recursive?: boolean }): Promise<void> {
  const k = key(path);
  if (options?.recursive) {
    const parts = k.split("/").filter(Boolean);
    for (let i = 1; i <= parts.length; i++) {
      const dir = `/${parts.slice(0, i).join("/")}`;
      const node = nodes.get(dir);
      if (node === undefined) nodes.set(dir, { kind: "dir" });
      else if (node.kind !== "dir") throw fsError("ENOTDIR", "mkdir", path);
    }
    return;
  }
  ensureParent(path, "mkdir");
  if (nodes.has(k)) throw fsError("EEXIST", "mkdir", path);
  nodes.set(k, { kind: "dir" });
}

/** `path` and everything under it. */
function subtree(k: string): string[] {
  return [...nodes.keys()].filter((p) => p === k || p.startsWith(`${k}/`));
}

export async function rename(from: string, to: string): Promise<void> {
  const a = key(from);
  const b = key(to);
  get(from, "rename");
  ensureParent(to, "rename");
  const target = nodes.get(b);
  if (target?.kind === "dir" && children(b).length > 0) throw fsError("ENOTEMPTY", "rename", to);
  for (const p of subtree(b)) nodes.delete(p);
  for (const p of subtree(a)) {
    const node = nodes.get(p)!;
    nodes.delete(p);
    nodes.set(b + p.slice(a.length), node);
  }
}

export async function rm(path: string, options?: { recursive?: boolean; force?: boolean }): Promise<void> {
  rmSync(path, options);
}

export function rmSync(path: string, options?: { recursive?: boolean; force?: boolean }): void {
  const k = key(path);
  const node = nodes.get(k);
  if (node === undefined) {
    if (options?.force) return;
    throw fsError("ENOENT", "rm", path);
  }
  if (node.kind === "dir" && !options?.recursive) throw fsError("EISDIR", "rm", path);
  for (const p of subtree(k)) nodes.delete(p);
}

/** Removes an empty folder (ENOTEMPTY otherwise), as node's rmdirSync. */
export function rmdirSync(path: string): void {
  const k = key(path);
  const node = nodes.get(k);
  if (node === undefined) throw fsError("ENOENT", "rmdir", path);
  if (node.kind !== "dir") throw fsError("ENOTDIR", "rmdir", path);
  if (subtree(k).some((p) => p !== k)) throw fsError("ENOTEMPTY", "rmdir", path);
  nodes.delete(k);
}

export async function unlink(path: string): Promise<void> {
  rmSync(path);
}

/** A second name for a file, refused (EEXIST) when `to` exists: how atomic.ts claims a new output. */
export async function link(from: string, to: string): Promise<void> {
  if (nodes.has(key(to))) throw fsError("EEXIST", "link", to);
  await copyFile(from, to);
}

export async function copyFile(from: string, to: string): Promise<void> {
  const node = get(from, "copyfile");
  if (node.kind === "dir") throw fsError("EISDIR", "copyfile", from);
  ensureParent(to, "copyfile");
  nodes.set(key(to), node.kind === "input" ? { kind: "written", parts: new Map([[0, node.blob]]), size: node.blob.size } : { ...node, parts: new Map(node.parts) });
}

export async function cp(from: string, to: string): Promise<void> {
  const a = key(from);
  const b = key(to);
  for (const p of subtree(a)) {
    const node = nodes.get(p)!;
    const dst = b + p.slice(a.length);
    if (node.kind === "dir") await mkdir(dst, { recursive: true });
    else await copyFile(p, dst);
  }
}

/** No quota is known ahead: a full one fails the write, and the page says so. */
export async function statfs(): Promise<never> {
  throw fsError("ENOSYS", "statfs", "/");
}

export function existsSync(path: string): boolean {
  return nodes.has(key(path));
}

export type { FileHandle };
export const constants = { F_OK: 0, R_OK: 4, W_OK: 2, X_OK: 1 };
export const promises = { open, stat, lstat, access, readFile, readdir, mkdir, rename, rm, unlink, link, copyFile, cp, statfs };
export default { ...promises, rmSync, rmdirSync, existsSync, constants, promises };
