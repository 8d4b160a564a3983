/** The few Buffer calls src/ makes, for the page (a Uint8Array with Node's toString encodings). */
export class Buffer extends Uint8Array {
  static override from(value: unknown, offsetOrEncoding?: unknown, length?: number): Buffer {
    if (typeof value === "string") {
      if (offsetOrEncoding === "base64") {
        const bin = atob(value);
        const out = new Buffer(bin.length);
        for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
        return out;
      }
      const bytes = new TextEncoder().encode(value);
      return new Buffer(bytes.buffer, bytes.byteOffset, bytes.length);
    }
    if (value instanceof ArrayBuffer || (typeof SharedArrayBuffer !== "undefined" && value instanceof SharedArrayBuffer)) {
      return new Buffer(value as ArrayBuffer, (offsetOrEncoding as number | undefined) ?? 0, length ?? (value as ArrayBuffer).byteLength - ((offsetOrEncoding as number | undefined) ?? 0));
    }
    const src = value as ArrayLike<number>;
    const out = new Buffer(src.length);
    out.set(src);
    return out;
  }

  static byteLength(value: string | Uint8Array): number {
    return typeof value === "string" ? new TextEncoder().encode(value).length : value.length;
  }

  static concat(list: readonly Uint8Array[], total = list.reduce((n, b) => n + b.length, 0)): Buffer {
    const out = new Buffer(total);
    let at = 0;
    for (const b of list) {
      out.set(b.subarray(0, Math.min(b.length, total - at)), at);
      at += b.length;
      if (at >= total) break;
    }
    return out;
  }

  static isBuffer(value: unknown): value is Buffer {
    return value instanceof Buffer;
  }

  static alloc(n: number): Buffer {
    return new Buffer(n);
  }

  override toString(encoding = "utf8"): string {
    if (encoding === "hex") return [...this].map((x) => x.toString(16).padStart(2, "0")).join("");
    return new TextDecoder().decode(this);
  }
}

/** The largest typed array V8 makes in a browser tab (2^32 - 1 elements on 64-bit Chromium). */
export const constants = { MAX_LENGTH: 2 ** 32 - 1, MAX_STRING_LENGTH: 2 ** 29 - 24 };
export const kMaxLength = constants.MAX_LENGTH;
export default { Buffer, constants, kMaxLength };
