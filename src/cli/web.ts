/** `kquant web`: serve the page that quantizes in the browser (src/web/server.ts) on 127.0.0.1 until Ctrl-C. */
import { Command, InvalidArgumentError } from "commander";

function parsePort(value: string): number {
  if (!/^\d+$/.test(value) || Number(value) > 65535) throw new InvalidArgumentError("expected a port number, 0 to 65535.");
  return Number(value);
}

export function webCommand(): Command {
  return new Command("web")
    .description("serve the page that quantizes in your browser, on this machine only (127.0.0.1), until Ctrl-C")
    .option("--port <n>", "port to listen on (default: a free one)", parsePort)
    .addHelpText(
      "after",
      `
Examples:
  kquant web                 serve the page on a free port and print its URL
  kquant web --port 8080     serve it on http://127.0.0.1:8080/

The page runs kquant's own code in the browser: the files you pick never leave it (docs/web.md).`,
    )
    .action(async (opts: { port?: number }) => {
      const { pageFiles, pageFolder, servePage } = await import("../serve/page-server.js");
      const server = await servePage(pageFiles(pageFolder()), opts.port ?? 0);
      const address = server.address();
      const port = typeof address === "object" && address !== null ? address.port : (opts.port ?? 0);
      process.stdout.write(`kquant: serving the page at http://127.0.0.1:${port}/ (Ctrl-C stops it)\n`);
      await new Promise<void>((resolve) => server.once("close", resolve));
    });
}
