/** yazl (npz.ts's zip writer) in the page: the page writes no .npz (its outputs are safetensors). */
import { KquantError } from "../../src/errors.js";

export class ZipFile {
  constructor() {
    throw new KquantError({ what: "the page does not write .npz", hint: "use `kquant dequantize OUTPUT -o FILE.npz`" });
  }
}
export default { ZipFile };
