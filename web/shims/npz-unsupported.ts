/** yauzl and yazl (npz.ts's zip reader and writer) in the page: .npz is not read there yet. */
import { KquantError } from "../../src/errors.js";

function unsupported(path?: unknown): never {
  throw new KquantError({ ...(typeof path === "string" ? { file: path } : {}), what: "the page does not read .npz yet", hint: "use `kquant quantize` for .npz, or save the arrays as .safetensors or .npy" });
}
export const open = unsupported;
export const fromRandomAccessReader = unsupported;
export class ZipFile {
  constructor() {
    unsupported();
  }
}
export default { open, fromRandomAccessReader, ZipFile };
