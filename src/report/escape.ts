import { printableLines } from "../errors.js";

/** Text made safe to put inside HTML or SVG, as element content or a quoted attribute value (control characters escaped as `\u001b`). */
export function escapeHtml(text: string): string {
  return printableLines(text).replace(/[&<>"']/g, (c) => ESCAPES[c]!);
}

const ESCAPES: Record<string, string> = { "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" };
