/**
 * `keras.quantizers.Quantizer`, `AbsMaxQuantizer` and `serialize` / `deserialize` / `get`,
 * reading and writing the JSON Keras 3.15.1 writes:
 *   {"module": "keras.quantizers", "class_name": "AbsMaxQuantizer",
 *    "config": {"value_range": [-127, 127], "epsilon": 1e-07, "output_dtype": "int8", "axis": [-1]},
 *    "registered_name": null}
 * ("axis" only when set; tuples become arrays).
 *
 * Keras quirks kept on purpose (fixtures/keras/gen_quantizer.py pins them):
 * - `get("AbsMaxQuantizer")` / `get("abs_max_quantizer")` calls the class with the kwargs dict
 *   as its first positional argument, so axis becomes tuple({}) = (): an EMPTY axis tuple,
 *   i.e. one scale per element. `get("Quantizer")` likewise sets output_dtype to {}.
 *   `deserialize("AbsMaxQuantizer")` instead builds the defaults (axis None → -1 at call time).
 * - Keras's `deserialize` returns an unknown class name unchanged and `get` then fails with
 *   "Could not interpret quantizer identifier: ..."; kquant throws that error from both.
 * - The QuantizationConfig classes Keras also registers here are not quantizers kquant runs;
 *   their names are rejected as unknown identifiers.
 */
import { KquantError } from "../errors.js";
import type { Tensor } from "./tensor.js";
import { DEFAULT_EPSILON, absMaxQuantize, type QuantArray, type QuantDType } from "./absmax.js";
import type { KerasBackend } from "./backend.js";

export type ConfigValue = null | boolean | number | string | ConfigValue[] | { [key: string]: ConfigValue };
export type QuantizerConfig = { [key: string]: ConfigValue };

export interface SerializedQuantizer {
  module: string;
  class_name: string;
  config: QuantizerConfig;
  registered_name: string | null;
}

export interface AbsMaxResult {
  values: Tensor<QuantArray>;
  scale: Tensor<Float32Array>;
}

/** What Keras stores when `get` passes an empty kwargs dict where a value belongs. */
export type EmptyKwargs = Readonly<Record<string, never>>;

/** Python's repr of a JSON value, so error messages read exactly as Keras's do. */
export function pyRepr(v: unknown): string {
  if (v === null || v === undefined) return "None";
  if (v === true) return "True";
  if (v === false) return "False";
  if (typeof v === "number") {
    if (Number.isInteger(v)) return String(v);
    return String(v).replace(/e([+-])(\d)$/, "e$10$2");
  }
  if (typeof v === "string") {
    const escaped = v.replace(/\\/g, "\\\\");
    if (v.includes("'") && !v.includes('"')) return `"${escaped}"`;
    return `'${escaped.replace(/'/g, "\\'")}'`;
  }
  if (Array.isArray(v)) return `[${v.map(pyRepr).join(", ")}]`;
  if (typeof v === "object") {
    return `{${Object.entries(v as Record<string, unknown>)
      .map(([k, x]) => `${pyRepr(k)}: ${pyRepr(x)}`)
      .join(", ")}}`;
  }
  return String(v);
}

function unexpectedKeys(cls: string, config: QuantizerConfig, allowed: readonly string[]): void {
  for (const k of Object.keys(config)) {
    if (!allowed.includes(k)) {
      throw new KquantError(`${cls}.__init__() got an unexpected keyword argument '${k}'`);
    }
  }
}

export class Quantizer {
  readonly outputDtype: string | EmptyKwargs;

  constructor(outputDtype: string | EmptyKwargs = "int8") {
    this.outputDtype = outputDtype;
  }

  get className(): string {
    return "Quantizer";
  }

  /** The base quantizer is the identity, as in Keras. */
  quantize(x: Tensor, _axis?: number | readonly number[] | null): Tensor | AbsMaxResult {
    return x;
  }

  getConfig(): QuantizerConfig {
    throw new KquantError(`<${this.className} object> does not implement get_config()`);
  }

  static fromConfig(config: QuantizerConfig): Quantizer {
    unexpectedKeys("Quantizer", config, ["output_dtype"]);
    const d = config["output_dtype"];
    if (d !== undefined && typeof d !== "string") {
      throw new KquantError(`Quantizer config: output_dtype must be a string, got ${pyRepr(d)}`);
    }
    return new Quantizer(d);
  }
}

export interface AbsMaxQuantizerOptions {
  /** Deprecated in Keras in favour of the call-time axis, still honoured. */
  axis?: number | readonly number[] | null;
  valueRange?: readonly [number, number];
  epsilon?: number;
  outputDtype?: string;
  /** The Keras backend whose arithmetic to reproduce (default tensorflow); not part of Keras's config. */
  backend?: KerasBackend;
}

export class AbsMaxQuantizer extends Quantizer {
  declare readonly outputDtype: string;
  readonly axis: number[] | null;
  readonly valueRange: [number, number];
  readonly epsilon: number;
  readonly backend: KerasBackend | undefined;

  constructor(opts: AbsMaxQuantizerOptions = {}) {
    const outputDtype = opts.outputDtype ?? "int8";
    super(outputDtype);
    const axis = opts.axis ?? null;
    this.axis = axis === null ? null : typeof axis === "number" ? [axis] : [...axis];
    this.valueRange = [...(opts.valueRange ?? [-127, 127])] as [number, number];
    this.epsilon = opts.epsilon ?? DEFAULT_EPSILON;
    this.backend = opts.backend;
    if (outputDtype === "int8" && (this.valueRange[0] < -128 || this.valueRange[1] > 127)) {
      throw new KquantError(
        "Quantizer with output_dtype='int8' requires value_range to be within the interval " +
          `[-128, 127]. Received: value_range=${pyRepr(this.valueRange)}`,
      );
    }
  }

  override get className(): string {
    return "AbsMaxQuantizer";
  }

  /** Axis: the call's, else the constructor's, else -1 (an empty array reduces nothing). */
  override quantize(x: Tensor, axis?: number | readonly number[] | null): AbsMaxResult {
    return absMaxQuantize(x, axis ?? this.axis ?? -1, {
      valueRange: this.valueRange,
      dtype: this.outputDtype as QuantDType,
      epsilon: this.epsilon,
      ...(this.backend !== undefined ? { backend: this.backend } : {}),
    });
  }

  override getConfig(): QuantizerConfig {
    const config: QuantizerConfig = {
      value_range: [...this.valueRange],
      epsilon: this.epsilon,
      output_dtype: this.outputDtype,
    };
    if (this.axis !== null) config["axis"] = [...this.axis];
    return config;
  }

  static override fromConfig(config: QuantizerConfig): AbsMaxQuantizer {
    unexpectedKeys("AbsMaxQuantizer", config, ["axis", "value_range", "epsilon", "output_dtype"]);
    const bad = (key: string) =>
      new KquantError(`AbsMaxQuantizer config: bad ${key} ${pyRepr(config[key])}`);
    const opts: AbsMaxQuantizerOptions = {};
    const axis = config["axis"];
    if (axis !== undefined && axis !== null) {
      if (typeof axis === "number" && Number.isInteger(axis)) opts.axis = axis;
      else if (Array.isArray(axis) && axis.every((a) => typeof a === "number" && Number.isInteger(a))) {
        opts.axis = axis as number[];
      } else throw bad("axis");
    }
    const range = config["value_range"];
    if (range !== undefined) {
      if (!Array.isArray(range) || range.length !== 2 || !range.every((r) => typeof r === "number")) {
        throw bad("value_range");
      }
      opts.valueRange = range as [number, number];
    }
    const eps = config["epsilon"];
    if (eps !== undefined) {
      if (typeof eps !== "number") throw bad("epsilon");
      opts.epsilon = eps;
    }
    const dtype = config["output_dtype"];
    if (dtype !== undefined) {
      if (typeof dtype !== "string") throw bad("output_dtype");
      opts.outputDtype = dtype;
    }
    return new AbsMaxQuantizer(opts);
  }
}

const CLASSES: Record<string, { fromConfig(c: QuantizerConfig): Quantizer; fromGet(): Quantizer; defaults(): Quantizer }> = {
  Quantizer: {
    fromConfig: (c) => Quantizer.fromConfig(c),
    fromGet: () => new Quantizer({}),
    defaults: () => new Quantizer(),
  },
  AbsMaxQuantizer: {
    fromConfig: (c) => AbsMaxQuantizer.fromConfig(c),
    fromGet: () => new AbsMaxQuantizer({ axis: [] }),
    defaults: () => new AbsMaxQuantizer(),
  },
};
const SNAKE: Record<string, string> = { quantizer: "Quantizer", abs_max_quantizer: "AbsMaxQuantizer" };

function lookup(name: string): (typeof CLASSES)[string] | undefined {
  const cls = Object.prototype.hasOwnProperty.call(CLASSES, name) ? name : SNAKE[name];
  return cls === undefined ? undefined : CLASSES[cls];
}

function uninterpretable(identifier: unknown): KquantError {
  const text = typeof identifier === "string" ? identifier : pyRepr(identifier);
  return new KquantError(`Could not interpret quantizer identifier: ${text}`);
}

export function serialize(q: Quantizer): SerializedQuantizer {
  return { module: "keras.quantizers", class_name: q.className, config: q.getConfig(), registered_name: null };
}

export function deserialize(config: string | SerializedQuantizer | QuantizerConfig): Quantizer {
  if (typeof config === "string") {
    const cls = lookup(config);
    if (!cls) throw uninterpretable(config);
    return cls.defaults();
  }
  const className = (config as QuantizerConfig)["class_name"];
  if (typeof className !== "string") {
    throw new KquantError(`Unknown \`config\` as a \`dict\`, config=${pyRepr(config)}`);
  }
  const cls = lookup(className);
  if (!cls) throw uninterpretable(config);
  const inner = (config as QuantizerConfig)["config"] ?? {};
  if (typeof inner !== "object" || inner === null || Array.isArray(inner)) {
    throw new KquantError(`quantizer config for ${className} must be a dict, got ${pyRepr(inner)}`);
  }
  return cls.fromConfig(inner);
}

export function get(identifier: unknown): Quantizer | null {
  if (identifier === null || identifier === undefined) return null;
  if (identifier instanceof Quantizer) return identifier;
  if (typeof identifier === "string") {
    const cls = lookup(identifier);
    if (!cls) throw uninterpretable(identifier);
    return cls.fromGet();
  }
  if (typeof identifier === "object" && !Array.isArray(identifier)) {
    return deserialize(identifier as QuantizerConfig);
  }
  throw uninterpretable(identifier);
}
