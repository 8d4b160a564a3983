/** The layouts by name: `--layout NAME`. */
import { KquantError } from "../errors.js";
import { KERAS_LAYOUT } from "./keras.js";
import { COMPRESSED_TENSORS_LAYOUT } from "./compressed-tensors.js";
import { KQUANT_LAYOUT } from "./kquant.js";
import { MLX_LAYOUT } from "./mlx.js";
import type { Layout, LayoutName } from "./layout.js";

const LAYOUTS: Partial<Record<LayoutName, Layout>> = {
  kquant: KQUANT_LAYOUT,
  keras: KERAS_LAYOUT,
  "compressed-tensors": COMPRESSED_TENSORS_LAYOUT,
  mlx: MLX_LAYOUT,
};

/** The names `--layout` takes. */
export const LAYOUT_NAMES = Object.keys(LAYOUTS) as LayoutName[];

/** The layout called `name`; exits 2 naming the choices on any other. */
export function layoutNamed(name: string): Layout {
  const layout = LAYOUTS[name as LayoutName];
  if (!layout) throw new KquantError({ file: `--layout ${name}`, what: "unknown layout", hint: `choose ${LAYOUT_NAMES.join(", ")}` });
  return layout;
}
