/**
 * A WebAssembly assembler in a few lines: LEB128, sections, the instructions and opcodes the
 * kernels use, and a counted loop. module.ts (quantize) and read-back-module.ts (dequantize,
 * error sums) write their functions with it.
 */

export const I32 = 0x7f;
export const F32 = 0x7d;
export const V128 = 0x7b;

export function uleb(n: number): number[] {
  const out: number[] = [];
  do {
    let b = n & 0x7f;
    n >>>= 7;
    if (n !== 0) b |= 0x80;
    out.push(b);
  } while (n !== 0);
  return out;
}

export function sleb(n: number): number[] {
  const out: number[] = [];
  for (;;) {
    const b = n & 0x7f;
    n >>= 7;
    if ((n === 0 && (b & 0x40) === 0) || (n === -1 && (b & 0x40) !== 0)) {
      out.push(b);
      return out;
    }
    out.push(b | 0x80);
  }
}

export function f32Bytes(x: number): number[] {
  return [...new Uint8Array(new Float32Array([x]).buffer)];
}

export function vec(bytes: number[]): number[] {
  return [...uleb(bytes.length), ...bytes];
}

export function section(id: number, body: number[]): number[] {
  return [id, ...vec(body)];
}

// Instructions.
export const get = (i: number) => [0x20, ...uleb(i)];
export const set = (i: number) => [0x21, ...uleb(i)];
export const tee = (i: number) => [0x22, ...uleb(i)];
export const i32c = (v: number) => [0x41, ...sleb(v)];
export const f32c = (v: number) => [0x43, ...f32Bytes(v)];
export const simd = (op: number) => [0xfd, ...uleb(op)];
export const mem = (align: number, offset = 0) => [...uleb(align), ...uleb(offset)];
export const v128load = (offset = 0) => [...simd(0x00), ...mem(0, offset)];
export const v128store = (offset = 0) => [...simd(0x0b), ...mem(0, offset)];
export const END = 0x0b;
export const I32_ADD = 0x6a;
export const I32_LT_U = 0x49;
export const F32X4_SPLAT = 0x13;
export const I32X4_SPLAT = 0x11;
export const I32X4_EXTRACT = 0x1b;
export const F32X4_LT = 0x43;
export const I32X4_GT_S = 0x3b;
export const V128_AND = 0x4e;
export const V128_ANDNOT = 0x4f;
export const I8X16_NARROW_S = 0x65;
export const I16X8_NARROW_S = 0x85;
export const F32X4_NEAREST = 0x6a;
export const I32X4_ADD = 0xae;
export const I32X4_SUB = 0xb1;
export const I32X4_MAX_S = 0xb8;
export const I32X4_SHR_U = 0xad;
export const I32X4_SHL = 0xab;
export const I16X8_SPLAT = 0x10;
export const I8X16_SHL = 0x6b;
export const I16X8_SHR_U = 0x8d;
export const I32X4_EXTEND_LOW_U = 0xa9;
export const I32X4_EXTEND_HIGH_U = 0xaa;
export const I32X4_EQ = 0x37;
export const I32X4_NE = 0x38;
export const I32X4_LT_S = 0x39;
export const I32X4_LE_S = 0x3d;
export const I32X4_GE_S = 0x3f;
export const F32X4_SUB = 0xe5;
export const V128_BITSELECT = 0x52;
export const V128_OR = 0x50;
export const F32X4_ADD = 0xe4;
export const F32X4_MIN = 0xe8;
export const F32X4_MAX = 0xe9;
export const F32X4_DIV = 0xe7;
export const F32X4_PMIN = 0xea;
export const F32X4_PMAX = 0xeb;
export const I16X8_NARROW_U = 0x86;
export const I8X16_NARROW_U = 0x66;
export const I8X16_SPLAT = 0x0f;
export const I8X16_MIN_S = 0x76;
export const I8X16_MAX_S = 0x78;
export const F32X4_ABS = 0xe0;
export const F32X4_MUL = 0xe6;
export const I32X4_TRUNC_SAT_S = 0xf8;
export const I8X16_SHUFFLE = 0x0d;
export const F32X4_EXTRACT = 0x1f;
export const F32X4_NE = 0x42;
export const V128_ANY_TRUE = 0x53;
export const I32_SUB = 0x6b;
export const I32_MUL = 0x6c;
export const I32_AND = 0x71;
export const I32_OR = 0x72;
export const I32_SHL = 0x74;
export const I32_GT_U = 0x4b;
export const I32_GE_U = 0x4f;
export const F32_LOAD = 0x2a;
export const F32_STORE = 0x38;
export const F32_ABS = 0x8b;
export const F32_NE = 0x5c;
export const F32_LT = 0x5d;
export const F32_GT = 0x5e;
export const SELECT = 0x1b;
export const F32X4_CONVERT_I32X4_S = 0xfa;
export const F32X4_EQ = 0x41;
export const F32X4_GT = 0x44;
export const F32X4_LE = 0x45;
export const F32X4_GE = 0x46;
export const I8X16_ADD = 0x6e;
export const F32X4_NEG = 0xe1;
export const F32_EQ = 0x5b;
export const F32_SUB = 0x93;
export const F64 = 0x7c;
export const F64X2_ABS = 0xec;
export const F64X2_ADD = 0xf0;
export const F64X2_EXTRACT = 0x21;
export const F64X2_MUL = 0xf2;
export const F64X2_NE = 0x48;
export const F64X2_PMAX = 0xf7;
export const F64X2_PROMOTE_LOW_F32X4 = 0x5f;
export const F64X2_SPLAT = 0x14;
export const F64X2_SUB = 0xf1;
export const F64_ADD = 0xa0;
export const F64_DIV = 0xa3;
export const F64_FLOOR = 0x9c;
export const F64_MAX = 0xa5;
export const F64_PROMOTE_F32 = 0xbb;
export const F64_STORE = 0x39;
export const F64_SUB = 0xa1;
export const I16X8_EXTEND_LOW_I8X16_S = 0x87;
export const I32X4_EXTEND_LOW_I16X8_S = 0xa7;
export const I32X4_MIN_S = 0xb6;
export const I32X4_SHR_S = 0xac;
export const I32_LOAD = 0x28;
export const I32_LOAD8_S = 0x2c;
export const I32_LT_S = 0x48;
export const I32_STORE = 0x36;
export const I32_TRUNC_SAT_F64_S = [0xfc, 0x02];
export const I64X2_EXTEND_LOW_I32X4_S = 0xc7;
export const I8X16_MAX_U = 0x79;
export const I8X16_SHR_S = 0x6c;
export const IF = 0x04;
export const ELSE = 0x05;
export const RETURN = 0x0f;
export const V128_LOAD32_ZERO = 0x5c;

/** `while (i < end) { body; i += step }` with i and end as locals. */
export function loop(i: number, end: number, step: number, body: number[]): number[] {
  return [
    0x02, 0x40, // block
    ...get(i), ...get(end), 0x4f, 0x0d, 0, // i >= end (unsigned) → break
    0x03, 0x40, // loop
    ...body,
    ...get(i), ...i32c(step), I32_ADD, ...tee(i),
    ...get(end), I32_LT_U, 0x0d, 0, // continue while i < end
    END,
    END,
  ];
}

/** The locals rowGroups walks with (indices), and the params it reads. */
export interface RowGroupLocals {
  rows: number;
  cols: number;
  bs: number;
  /** The group's first element, one past its last, its row's end, the element count: set by the walk. */
  p: number;
  gEnd: number;
  rowEnd: number;
  total: number;
  /** The group's index (times `jStep`): 0 for the first group, advanced after each. */
  j: number;
}

/**
 * For each group of `bs` consecutive elements of each of `rows` rows of `cols` (the last group
 * of a row possibly shorter), row by row: `group` runs with p, gEnd and j set — grouped int4's
 * walk along the last axis, shared by the kernels that quantize and dequantize it.
 */
export function rowGroups(L: RowGroupLocals, jStep: number, group: number[]): number[] {
  return [
    ...i32c(0), ...set(L.p), ...i32c(0), ...set(L.j),
    ...get(L.rows), ...get(L.cols), 0x6c, ...set(L.total), // i32.mul
    0x02, 0x40, // block: no rows → done
    ...get(L.p), ...get(L.total), 0x4f, 0x0d, 0, // p >= total → break
    0x03, 0x40, // loop over rows
    ...get(L.p), ...get(L.cols), I32_ADD, ...set(L.rowEnd),
    0x03, 0x40, // loop over the row's groups
    // gEnd = min(p + bs, rowEnd); select(a, b, c) is c ? a : b
    ...get(L.rowEnd), ...get(L.p), ...get(L.bs), I32_ADD, ...tee(L.gEnd), ...get(L.gEnd), ...get(L.rowEnd), 0x4b, 0x1b, ...set(L.gEnd),
    ...group,
    ...get(L.gEnd), ...set(L.p),
    ...get(L.j), ...i32c(jStep), I32_ADD, ...set(L.j),
    ...get(L.p), ...get(L.rowEnd), I32_LT_U, 0x0d, 0,
    END, // groups
    ...get(L.p), ...get(L.total), I32_LT_U, 0x0d, 0,
    END, // rows
    END, // block
  ];
}

/** One function of the module: its signature, locals beyond the params, and body (without the final end). */
export interface Func {
  name: string;
  params: number[];
  results: number[];
  locals: number[];
  body: number[];
}

/** The smallest normal float32: the flush threshold. */
export const MIN_NORMAL = 2 ** -126;
/** global.get of the flush threshold: MIN_NORMAL (flush subnormals) or 0 (keep them), see set_tiny. */
export const TINY_NOW = [0x23, 0x00];
