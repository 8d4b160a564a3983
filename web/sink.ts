/// <reference lib="dom" />
/**
 * Where a run's outputs go when the user picked a destination before the run (File System Access
 * API): a file (showSaveFilePicker: the main output goes there, the rest stays in the page) or a
 * folder (showDirectoryPicker: every output, in the CLI's names and folders). The worker's file
 * system (vfs.ts) hands each write of such an output straight to a FileSystemWritableFileStream,
 * so the page never holds the output. The browser writes a stream to a swap file and replaces
 * the target only on close(); abort() discards it. So commit() closes them all once the run is
 * whole, and abort() (a failed run) discards them and removes the files this run created.
 */
import { KquantError } from "../src/errors.js";
import { targetOfTempPath } from "../src/formats/atomic.js";
import { settle, streamWritesTo, type ByteSink } from "./vfs.js";

/** A destination the user picked, as the page posts it to the worker (handles are structured-cloneable). */
export type Destination =
  /** `path`: the output (its path in the page's file system) that goes to `handle`. */
  | { kind: "file"; handle: FileSystemFileHandle; path: string }
  | { kind: "folder"; handle: FileSystemDirectoryHandle };

/** A file of the destination this run writes, and its writable stream. */
interface Open {
  path: string;
  file: FileSystemFileHandle;
  writable: FileSystemWritableFileStream;
}

/** The path relative to the file system's root, without its leading slash. */
const relative = (path: string) => path.replace(/^\/+/, "");

/**
 * Where a file being written ends up: atomic.ts writes a file, or a whole output folder (a folder
 * run), under a temp name and renames it when whole; each temp name stands for its target.
 */
const targetOf = (path: string) =>
  relative(path)
    .split("/")
    .map((p) => targetOfTempPath(p) ?? p)
    .join("/");

/**
 * The outputs of one run streamed to `dest`. `onCreated` hears each file and folder this run
 * creates in a picked folder before it exists (the file is made once its promise settles), so the
 * page can remove it when it stops the worker.
 */
export class StreamedOutputs {
  private readonly open = new Map<string, Open>();
  /** Files and folders this run created in a picked folder, in the order made. */
  private readonly created: string[] = [];

  constructor(
    private readonly dest: Destination,
    private readonly onCreated: (path: string) => void | Promise<void> = () => {},
  ) {}

  /** Paths (relative) of the files written to the destination so far. */
  get paths(): string[] {
    return [...this.open.keys()];
  }

  /**
   * The sink for a file the pipeline opens (a temp file of atomic.ts stands for its target), or
   * undefined when it stays in the page. A folder's existing file is never overwritten: the
   * CLI's "output already exists", naming it.
   */
  async sinkFor(path: string): Promise<ByteSink | undefined> {
    const target = targetOf(path);
    let entry = this.open.get(target);
    if (entry === undefined) {
      const made = await this.create(target);
      if (made === undefined) return undefined;
      entry = made;
      this.open.set(target, entry);
    }
    const { writable } = entry;
    return { write: (position, bytes) => writable.write({ type: "write", position, data: bytes as Uint8Array<ArrayBuffer> }) };
  }

  private async create(target: string): Promise<Open | undefined> {
    if (this.dest.kind === "file") {
      if (target !== relative(this.dest.path)) return undefined;
      const file = this.dest.handle;
      // The picked file (the user chose to replace it) is replaced on close, not before.
      return { path: target, file, writable: await file.createWritable({ keepExistingData: false }) };
    }
    const parts = target.split("/").filter(Boolean);
    let parent = this.dest.handle;
    for (let i = 0; i < parts.length - 1; i++) {
      const sub = await parent.getDirectoryHandle(parts[i]!).catch(() => null);
      if (sub !== null) parent = sub;
      else {
        await this.made(parts.slice(0, i + 1).join("/"));
        parent = await parent.getDirectoryHandle(parts[i]!, { create: true });
      }
    }
    const name = parts[parts.length - 1]!;
    const exists = await parent.getFileHandle(name).then(
      () => true,
      () => false,
    );
    if (exists) throw new KquantError({ file: target, what: "output already exists in the folder picked", hint: "pick another folder, or remove it first" });
    await this.made(target);
    const file = await parent.getFileHandle(name, { create: true });
    return { path: target, file, writable: await file.createWritable({ keepExistingData: false }) };
  }

  /** Noted (and, in the page, acknowledged) before it is made: a run stopped meanwhile still has it removed. */
  private async made(path: string): Promise<void> {
    this.created.push(path);
    await this.onCreated(path);
  }

  /** Closes every stream (each target is replaced now, whole) and returns the written files as the disk has them. */
  async commit(): Promise<{ path: string; file: File }[]> {
    const out: { path: string; file: File }[] = [];
    for (const o of this.open.values()) {
      await o.writable.close();
      out.push({ path: o.path, file: await o.file.getFile() });
    }
    this.open.clear();
    return out;
  }

  /** Discards every stream (no target is touched) and removes the files and folders this run created; never throws. */
  async abort(): Promise<void> {
    for (const o of this.open.values()) await o.writable.abort().catch(() => {});
    this.open.clear();
    if (this.dest.kind === "folder") await removeCreated(this.dest.handle, this.created.splice(0));
  }
}

/**
 * Runs `run` with the files it writes streamed to `dest` (or kept in the page when `dest` is
 * undefined): once it succeeds every stream is closed, each target replaced whole, and the page's
 * file system reads the files back from the disk (the Check step); when it fails every stream is
 * discarded and what it created removed before the error goes on. Returns `run`'s result and the
 * paths (relative) written to `dest`.
 */
export async function writingTo<T>(dest: Destination | undefined, onCreated: (path: string) => void | Promise<void>, run: () => Promise<T>): Promise<{ result: T; saved: string[] }> {
  if (dest === undefined) return { result: await run(), saved: [] };
  const outputs = new StreamedOutputs(dest, onCreated);
  streamWritesTo((path) => outputs.sinkFor(path));
  try {
    const result = await run();
    streamWritesTo(null);
    const saved: string[] = [];
    for (const { path, file } of await outputs.commit()) {
      settle(`/${path}`, file);
      saved.push(path);
    }
    return { result, saved };
  } catch (err) {
    await outputs.abort();
    throw err;
  } finally {
    streamWritesTo(null);
  }
}

/**
 * Removes `paths` (relative, in the order onCreated named them: folders before what is in them)
 * from `folder`, last first: what a run created there. The page calls it for a run it stopped
 * (its worker terminated mid-write). Never throws; returns the paths still there (empty when all
 * are gone), which the page names.
 */
export async function removeCreated(folder: FileSystemDirectoryHandle, paths: readonly string[], waitMs = REMOVE_WAIT_MS): Promise<string[]> {
  const left: string[] = [];
  const deadline = Date.now() + waitMs;
  for (const path of [...paths].reverse()) {
    const parts = path.split("/").filter(Boolean);
    let dir: FileSystemDirectoryHandle | null = folder;
    for (const p of parts.slice(0, -1)) dir = dir ? await dir.getDirectoryHandle(p).catch(() => null) : null;
    if (dir === null) continue;
    // A stopped worker's stream holds its file until the browser notices the worker is gone, which
    // takes longer on a busy machine: tried again every 50 ms up to one deadline for the whole list.
    for (;;) {
      const gone = await dir.removeEntry(parts[parts.length - 1]!).then(
        () => true,
        (err: unknown) => (err as Error).name === "NotFoundError",
      );
      if (gone) break;
      if (Date.now() >= deadline) {
        left.push(path);
        break;
      }
      await new Promise((r) => setTimeout(r, 50));
    }
  }
  return left;
}

/** How long removeCreated keeps trying to remove files still held by a stopped worker's streams. */
const REMOVE_WAIT_MS = 30_000;
