/** kquant's own layout: the stored tensors as the kernels make them, `N`, `N_scale`[, `N_zero`]. */
import { asStored, type Layout } from "./layout.js";

export const KQUANT_LAYOUT: Layout = {
  name: "kquant",
  adapt: (_source, spec) => spec,
  written: (_source, _spec, stored) => asStored(stored),
};
