import { describe, expect, it } from "vitest";
import { parsePythonJson, pythonFloatRepr, pythonJson } from "../../src/formats/python-json.js";

// What Python 3.11 prints: [x, repr(x)] from json.dumps([[x, repr(x)] for x in xs]), and
// json.dumps(obj, indent=2, sort_keys=True) of the object below.
const REPRS: [number, string][] = [
  [0.0, "0.0"], [-0.0, "-0.0"], [1e-6, "1e-06"], [1.5e-7, "1.5e-07"], [10000.0, "10000.0"], [0.0001, "0.0001"],
  [0.00012, "0.00012"], [1e16, "1e+16"], [1.2345678901234568e16, "1.2345678901234568e+16"], [123456789012345.6, "123456789012345.6"],
  [0.1, "0.1"], [1 / 3, "0.3333333333333333"], [2.5e-300, "2.5e-300"], [1.7976931348623157e308, "1.7976931348623157e+308"],
  [-42.0, "-42.0"], [5e-324, "5e-324"], [1e15, "1000000000000000.0"], [9999999999999998.0, "9999999999999998.0"],
];

describe("Python's json, as llm-compressor writes config.json", () => {
  it("floats as Python's repr", () => {
    for (const [x, r] of REPRS) expect([x, pythonFloatRepr(x)]).toEqual([x, r]);
  });

  it("json.load → json.dump(indent=2, sort_keys=True): number literals keep their kind, non-ASCII is escaped", () => {
    const text = '{"b": [1, {"é": "ü"}], "a": {}, "10": [], "2": null, "c": true, "f": [0.0, 1e-06, 10000.0, 12345678901234567890, -0]}';
    expect(pythonJson(parsePythonJson(text, "config.json"), { indent: 2, sortKeys: true })).toBe(
      '{\n  "10": [],\n  "2": null,\n  "a": {},\n  "b": [\n    1,\n    {\n      "\\u00e9": "\\u00fc"\n    }\n  ],\n  "c": true,\n' +
        '  "f": [\n    0.0,\n    1e-06,\n    10000.0,\n    12345678901234567890,\n    0\n  ]\n}',
    );
  });

  it("without indent: Python's default separators; bad JSON is one line naming the file", () => {
    expect(pythonJson({ metadata: { total_size: 3 }, weight_map: { "a.b": "m.safetensors" } })).toBe('{"metadata": {"total_size": 3}, "weight_map": {"a.b": "m.safetensors"}}');
    expect(() => parsePythonJson('{"a": 1,}', "c.json")).toThrow(/^c\.json: not valid JSON/);
  });
});
