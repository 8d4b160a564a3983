import { describe, expect, it } from "vitest";
import { findDuplicateKey } from "../../src/formats/json-keys.js";

describe("findDuplicateKey", () => {
  it("finds repeats at the top level, nested, and spelled with escapes", () => {
    expect(findDuplicateKey('{"a":1,"b":[{"x":"}"}],"a":2}')).toEqual({ path: [], key: "a" });
    expect(findDuplicateKey('{"a":{"k":"v","k":"w"}}')).toEqual({ path: ["a"], key: "k" });
    expect(findDuplicateKey('{"a":[{"q":1},{"q":2,"q":3}]}')).toEqual({ path: ["a", "1"], key: "q" });
    expect(findDuplicateKey('{"\\u0061":1, "a" : 2}')).toEqual({ path: [], key: "a" });
  });

  it("accepts objects without repeats, including tricky strings", () => {
    expect(findDuplicateKey('{"a\\"b":"c\\\\","a":{},"b":[],"c":[1, true, null, -2.5e3], "d" : { } }')).toBeNull();
    expect(findDuplicateKey("[]")).toBeNull();
  });
});
