import type { VerifyReport } from "../pipeline/read-back/verify.js";

/** The verdict line of a verify report, as the terminal summary and the HTML page both print it. */
export function verifyStatusLine(r: VerifyReport): string {
  const s = r.summary;
  return `${r.ok ? "OK" : "FAILED"}: ${s.tensors - s.failed} of ${s.tensors} tensors pass (${s.quantized} quantized, ${s.passthrough} kept), ${s.hashes_checked} hashes checked`;
}
