import { createHash, type Hash } from "node:crypto";

export function sha256Hex(bytes: Uint8Array): string {
  return createHash("sha256").update(bytes).digest("hex");
}

/** A sha256 fed part by part, for bytes that arrive in order (a tensor being read). */
export function sha256Stream(): Hash {
  return createHash("sha256");
}
