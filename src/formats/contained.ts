/**
 * Paths that come from inside a file (an index's weight map, a part file's outputs, a manifest)
 * name files in that file's own folder: checked here, in one place, before anything is read or
 * written at them, so that no file can send kquant outside its folder.
 */
import { KquantError } from "../errors.js";

/** Where a path came from, for the error. */
export interface PathOrigin {
  /** The file that holds the path. */
  file: string;
  /** What the path is there ("shard", "output index"). */
  field: string;
  /** What the holding file is ("index", "part file"), for "not a file in the index's folder". */
  holder: string;
  tensor?: string;
}

/**
 * `name` as a relative path that stays in the holding file's folder: not empty, not absolute, no
 * `..` part, no backslash (a Windows separator) or NUL. Returns it, or throws one line naming the file.
 */
export function pathInFolder(name: unknown, origin: PathOrigin): string {
  if (typeof name !== "string" || name === "" || name.startsWith("/") || name.includes("\\") || name.includes("\0") || name.split("/").includes("..") || /^[A-Za-z]:/.test(name)) {
    throw new KquantError({
      file: origin.file,
      ...(origin.tensor !== undefined ? { tensor: origin.tensor } : {}),
      what: `${origin.field} ${JSON.stringify(name)} is not a file in the ${origin.holder}'s folder`,
    });
  }
  return name;
}

/** `name` as a file directly in the holding file's folder (as pathInFolder, and no `/` either). */
export function fileNameInFolder(name: unknown, origin: PathOrigin): string {
  const path = pathInFolder(name, origin);
  if (path.includes("/") || path === "." ) {
    throw new KquantError({ file: origin.file, what: `${origin.field} ${JSON.stringify(name)} is not a file name in the ${origin.holder}'s folder` });
  }
  return path;
}
