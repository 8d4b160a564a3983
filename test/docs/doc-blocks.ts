/**
 * The commands shown in README.md and docs/*.md, and the output shown after them, so a test can
 * run every one and compare. A ```sh block is run (its lines in order, in one shell); a ```text
 * block right after it is what the block prints (stdout then stderr). A block preceded by
 * `<!-- not run: why -->` is illustrative (or run elsewhere, e.g. by .ci/run) and is skipped.
 * The README's set-up lines are run without their `npm ci && ` and `npm test`: the checkout under
 * test is installed already, and CI runs both lines as they are (.ci/run).
 */
export interface DocBlock {
  file: string;
  /** 1-based line of the opening fence. */
  line: number;
  commands: string;
  /** The output shown right after the commands, if any, and its lines (0-based, between the fences). */
  output?: string;
  outputLines?: [number, number];
  /** Why it is not run, if it is not. */
  notRun?: string;
}

const FENCE = /^```(\S*)\s*$/;

export function docBlocks(file: string, markdown: string): DocBlock[] {
  const lines = markdown.split("\n");
  const blocks: DocBlock[] = [];
  let i = 0;
  let lastComment: string | undefined;
  while (i < lines.length) {
    const line = lines[i]!;
    const comment = /^<!--\s*not run:\s*(.*?)\s*-->\s*$/.exec(line);
    if (comment) {
      lastComment = comment[1];
      i++;
      continue;
    }
    const open = FENCE.exec(line);
    if (!open) {
      if (line.trim() !== "") lastComment = undefined;
      i++;
      continue;
    }
    const start = i;
    const body: string[] = [];
    for (i++; i < lines.length && !/^```\s*$/.test(lines[i]!); i++) body.push(lines[i]!);
    i++;
    if (open[1] !== "sh") {
      lastComment = undefined;
      continue;
    }
    const commands = body.filter((l) => l.trim() !== "npm test").map((l) => l.replace(/^npm ci && /, ""));
    const block: DocBlock = { file, line: start + 1, commands: commands.join("\n"), ...(lastComment !== undefined ? { notRun: lastComment } : {}) };
    lastComment = undefined;
    // Output shown right after: a ```text block, after at most a short lead-in ending in ':'.
    let j = i;
    while (j < lines.length && j - i < 6 && !FENCE.test(lines[j]!)) j++;
    const leadIn = lines.slice(i, j).filter((l) => l.trim() !== "");
    if (j < lines.length && /^```text\s*$/.test(lines[j]!) && (leadIn.length === 0 || /:\s*$/.test(leadIn[leadIn.length - 1]!))) {
      const out: string[] = [];
      for (j++; j < lines.length && !/^```\s*$/.test(lines[j]!); j++) out.push(lines[j]!);
      block.output = out.join("\n");
      block.outputLines = [j - out.length, j];
      i = j + 1;
    }
    blocks.push(block);
  }
  return blocks;
}

/** `markdown` with the output blocks replaced by what was printed (DOCS_UPDATE=1), keyed by the block's line. */
export function withOutputs(markdown: string, blocks: readonly DocBlock[], printed: ReadonlyMap<number, string>): string {
  const lines = markdown.split("\n");
  // From the bottom up, so earlier line numbers stay valid.
  for (const b of [...blocks].reverse()) {
    const text = printed.get(b.line);
    if (text === undefined || !b.outputLines) continue;
    const [from, to] = b.outputLines;
    lines.splice(from, to - from, ...text.split("\n"));
  }
  return lines.join("\n");
}
