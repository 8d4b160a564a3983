/**
 * `kquant web`: serves the page (dist/web, built by `npm run build` from web/) on 127.0.0.1 and
 * nothing else. Its files are read once at start and served by exact name, so no request maps to
 * any other path on disk; every response carries the Content-Security-Policy that keeps the page
 * from requesting anything but its own files.
 */
import { readdirSync, readFileSync, statSync } from "node:fs";
import { createServer, type Server } from "node:http";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { KquantError } from "../errors.js";

/**
 * The page's policy, which has one home: the Content-Security-Policy <meta> of its index.html
 * (its own scripts, styles and worker; WebAssembly compiled from bytes; the verify report's
 * hashed style and script; no connection anywhere). Served as a header too, with what a <meta>
 * cannot say (frame-ancestors), so that the worker's script is held to it as well.
 */
export function pagePolicy(indexHtml: string): string {
  const m = /<meta http-equiv="Content-Security-Policy" content="([^"]+)">/.exec(indexHtml);
  if (m === null) throw new KquantError({ file: "index.html", what: "the page has no Content-Security-Policy" });
  return `${m[1]}; frame-ancestors 'none'`;
}

const TYPES: Record<string, string> = {
  ".html": "text/html; charset=utf-8",
  ".js": "text/javascript; charset=utf-8",
  ".css": "text/css; charset=utf-8",
  ".png": "image/png",
  ".svg": "image/svg+xml",
};

/**
 * Where the built page is: dist/web beside the CLI bundle (dist/*.cjs), above the compiled
 * library (dist/cli/, dist/web/), or dist/web of the checkout when run from the sources.
 */
export function pageFolder(): string {
  const candidates = ["./web/", "../web/", "../../dist/web/"].map((rel) => fileURLToPath(new URL(rel, import.meta.url)));
  const found = candidates.find((dir) => statSync(join(dir, "index.html"), { throwIfNoEntry: false })?.isFile() && statSync(join(dir, "worker.js"), { throwIfNoEntry: false })?.isFile());
  if (found === undefined) throw new KquantError({ what: "the page is not built (no dist/web/index.html)", hint: "run npm run build" });
  return found;
}

/** The page's files by URL path ("/" is index.html): the regular files at the top of `dir`. */
export function pageFiles(dir: string): Map<string, { body: Buffer; type: string }> {
  const files = new Map<string, { body: Buffer; type: string }>();
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    if (!entry.isFile()) continue;
    const ext = entry.name.slice(entry.name.lastIndexOf("."));
    const type = TYPES[ext];
    if (type === undefined) continue;
    files.set(`/${entry.name}`, { body: readFileSync(join(dir, entry.name)), type });
  }
  const index = files.get("/index.html");
  if (index) files.set("/", index);
  return files;
}

/** Serves `files` on 127.0.0.1:`port` (0: a free port); resolves with the server once it listens. */
export function servePage(files: Map<string, { body: Buffer; type: string }>, port: number): Promise<Server> {
  const index = files.get("/index.html");
  if (index === undefined) throw new KquantError({ what: "the page has no index.html", hint: "run npm run build" });
  const policy = pagePolicy(index.body.toString("utf8"));
  const server = createServer((req, res) => {
    const path = (req.url ?? "/").split(/[?#]/)[0]!;
    const file = files.get(path);
    const headers = {
      "Content-Security-Policy": policy,
      "X-Content-Type-Options": "nosniff",
      "Referrer-Policy": "no-referrer",
      "Cross-Origin-Opener-Policy": "same-origin",
      // With the opener policy, cross-origin isolation: the page has SharedArrayBuffer, so its worker runs a pool (web/pool.ts).
      "Cross-Origin-Embedder-Policy": "require-corp",
      "Cross-Origin-Resource-Policy": "same-origin",
      "Cache-Control": "no-store",
    };
    if (req.method !== "GET" && req.method !== "HEAD") {
      res.writeHead(405, { ...headers, Allow: "GET, HEAD", "Content-Type": "text/plain" }).end("method not allowed\n");
      return;
    }
    if (file === undefined) {
      res.writeHead(404, { ...headers, "Content-Type": "text/plain" }).end("not found\n");
      return;
    }
    res.writeHead(200, { ...headers, "Content-Type": file.type, "Content-Length": file.body.length });
    res.end(req.method === "HEAD" ? undefined : file.body);
  });
  return new Promise((resolve, reject) => {
    server.once("error", (err: NodeJS.ErrnoException) => {
      reject(err.code === "EADDRINUSE" ? new KquantError({ file: `--port ${port}`, what: "the port is in use", hint: "choose another, or leave --port out for a free one" }) : err);
    });
    server.listen(port, "127.0.0.1", () => resolve(server));
  });
}
