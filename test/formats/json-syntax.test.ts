import { describe, expect, it } from "vitest";
import { jsonSyntaxProblem, parseJson } from "../../src/formats/json-syntax.js";

describe("jsonSyntaxProblem", () => {
  it("is null for valid JSON, as JSON.parse agrees", () => {
    for (const t of ['{"a":[1,-2.5e3,true,false,null,"x\\u00e9\\n"]}', " [ ] ", '"s"', "0", '{"a":{"b":{}}}']) {
      expect(() => JSON.parse(t)).not.toThrow();
      expect(jsonSyntaxProblem(t)).toBeNull();
    }
  });

  it("names the line and column of the first break, for every text JSON.parse refuses", () => {
    const cases: [string, string][] = [
      ['{ "rules": [\n  { "match": }\n] }', "line 2, column 14: expected a value, found '}'"],
      ["{ not json", "line 1, column 3: expected a double-quoted key, found 'n'"],
      ['{"a" 1}', "line 1, column 6: expected ':' after the key, found '1'"],
      ["[1 2]", "line 1, column 4: expected ',' or ']', found '2'"],
      ['{"a":1,}', "line 1, column 8: expected a double-quoted key, found '}'"],
      ['"abc', "line 1, column 5: unterminated string"],
      ['"a\\qb"', "line 1, column 3: bad escape 'q'"],
      ["[01]", "line 1, column 3: expected ',' or ']', found '1'"],
      ["{}x", "line 1, column 3: unexpected 'x' after the JSON value"],
      ["", "line 1, column 1: expected a value, found the end of the text"],
      ["[".repeat(100000), "line 1, column 100001: expected a value, found the end of the text"],
    ];
    for (const [text, want] of cases) {
      expect(() => JSON.parse(text), text).toThrow();
      expect(jsonSyntaxProblem(text), text).toBe(want);
      expect(() => parseJson(text)).toThrow(want);
    }
  });
});
