import type { VerifyReport } from "../pipeline/read-back/verify.js";

/** The verdict line of a verify report, as the terminal summary and the HTML page both print it. */
export function verifyStatusLine(r: VerifyReport): string {
  const s = r.summary;
  const files = s.files_checked?.length ? `, ${s.files_checked.length} file hash${s.files_checked.length === 1 ? "" : "es"}` : "";
  return `${r.ok ? "OK" : "FAILED"}: ${s.tensors - s.failed} of ${s.tensors} tensors pass (${s.quantized} quantized, ${s.passthrough} kept), ${s.hashes_checked} hashes checked${files}`;
}
