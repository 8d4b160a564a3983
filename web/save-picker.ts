/// <reference lib="dom" />
/**
 * The page's "choose where to save" before a run (File System Access API): a file for a run with
 * one output file (showSaveFilePicker), a folder for any run (showDirectoryPicker). Where the
 * browser has neither, the outputs are offered as downloads (Blobs) after the run.
 */
import type { Destination } from "./sink.js";

interface Pickers {
  showSaveFilePicker?(o: { suggestedName: string; types?: { description: string; accept: Record<string, string[]> }[] }): Promise<FileSystemFileHandle>;
  showDirectoryPicker?(o: { mode: "readwrite"; id?: string }): Promise<FileSystemDirectoryHandle>;
}

const pickers = () => window as unknown as Pickers;

/** Which pickers this browser has (read at each call, so a script may provide them later). */
export function pickersAvailable(): { file: boolean; folder: boolean } {
  return { file: typeof pickers().showSaveFilePicker === "function", folder: typeof pickers().showDirectoryPicker === "function" };
}

/**
 * Asks the user for a file named like `output` (a path of the page's file system: the run's main
 * output), or for a folder; null when the user closes the dialog.
 */
export async function pickDestination(kind: "file" | "folder", output: string): Promise<Destination | null> {
  try {
    if (kind === "file") {
      const name = output.slice(output.lastIndexOf("/") + 1);
      const handle = await pickers().showSaveFilePicker!({ suggestedName: name, types: [{ description: "safetensors", accept: { "application/octet-stream": [".safetensors"] } }] });
      return { kind: "file", handle, path: output };
    }
    return { kind: "folder", handle: await pickers().showDirectoryPicker!({ mode: "readwrite", id: "kquant-output" }) };
  } catch (err) {
    if ((err as Error).name === "AbortError") return null;
    throw err;
  }
}

/** What the page says about `dest` (or about downloads when there is none), in one line. */
export function destinationText(dest: Destination | null, maxDownload: string): string {
  const { file, folder } = pickersAvailable();
  if (dest?.kind === "file") return `Writing the output to ${dest.handle.name} as it is made (the manifest is offered as a download).`;
  if (dest?.kind === "folder") return `Writing the outputs into the folder ${dest.handle.name} as they are made, in the CLI's names.`;
  if (!file && !folder) return `This browser cannot write to a file you pick: the outputs are offered as downloads, up to ${maxDownload} a file.`;
  return `The outputs are offered as downloads after the run, up to ${maxDownload} a file; to write them to disk as they are made (any size), choose where to save first.`;
}
