/** node:path (POSIX) for the page: the page's file system (../vfs.ts) is rooted at "/" and its working folder is "/". */
export const sep = "/";
export const delimiter = ":";

export function normalize(path: string): string {
  if (path === "") return ".";
  const absolute = path.startsWith("/");
  const out: string[] = [];
  for (const part of path.split("/")) {
    if (part === "" || part === ".") continue;
    if (part === "..") {
      if (out.length > 0 && out[out.length - 1] !== "..") out.pop();
      else if (!absolute) out.push("..");
    } else out.push(part);
  }
  const body = out.join("/");
  const trailing = path.endsWith("/") && body !== "" ? "/" : "";
  return absolute ? `/${body}${trailing}` : body === "" ? "." : `${body}${trailing}`;
}

export function join(...parts: string[]): string {
  const joined = parts.filter((p) => p !== "").join("/");
  return joined === "" ? "." : normalize(joined);
}

export function isAbsolute(path: string): boolean {
  return path.startsWith("/");
}

export function resolve(...parts: string[]): string {
  let out = "";
  for (const p of parts) out = isAbsolute(p) ? p : `${out}/${p}`;
  const n = normalize(isAbsolute(out) ? out : `/${out}`);
  return n.length > 1 && n.endsWith("/") ? n.slice(0, -1) : n;
}

export function dirname(path: string): string {
  const trimmed = path.length > 1 ? path.replace(/\/+$/, "") : path;
  const i = trimmed.lastIndexOf("/");
  if (i < 0) return ".";
  return i === 0 ? "/" : trimmed.slice(0, i);
}

export function basename(path: string, ext?: string): string {
  const trimmed = path.length > 1 ? path.replace(/\/+$/, "") : path;
  const base = trimmed.slice(trimmed.lastIndexOf("/") + 1);
  return ext !== undefined && base.endsWith(ext) && base !== ext ? base.slice(0, -ext.length) : base;
}

export function extname(path: string): string {
  const base = basename(path);
  const i = base.lastIndexOf(".");
  return i <= 0 ? "" : base.slice(i);
}

export function relative(from: string, to: string): string {
  const a = resolve(from).split("/").filter(Boolean);
  const b = resolve(to).split("/").filter(Boolean);
  let i = 0;
  while (i < a.length && i < b.length && a[i] === b[i]) i++;
  return [...a.slice(i).map(() => ".."), ...b.slice(i)].join("/");
}

export const posix = { sep, delimiter, normalize, join, isAbsolute, resolve, dirname, basename, extname, relative };
export default posix;
