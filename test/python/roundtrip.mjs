// Reads every input with kquant's readers and writes it back with kquant's writers:
// the same format under the same name, and additionally everything as `<name>.as.safetensors`.
import { mkdirSync, readdirSync } from "node:fs";
import { basename, join } from "node:path";

const dist = new URL("../../dist/formats/", import.meta.url);
const { openTensors } = await import(new URL("open.js", dist));
const { createSafetensorsWriter } = await import(new URL("safetensors-writer.js", dist));
const { writeNpy } = await import(new URL("npy.js", dist));
const { writeNpz } = await import(new URL("npz.js", dist));

const [inDir, outDir] = process.argv.slice(2);
mkdirSync(outDir, { recursive: true });

async function toSafetensors(reader, target) {
  const planned = reader.tensors.map(({ name, dtype, shape }) => ({ name, dtype, shape }));
  const writer = await createSafetensorsWriter(target, planned, { ...(reader.metadata ?? {}) });
  for (const t of reader.tensors) await writer.write(t.name, await reader.read(t.name));
  await writer.finish();
}

let count = 0;
for (const file of readdirSync(inDir).sort()) {
  const isShard = /-\d{5}-of-\d{5}\.safetensors$/.test(file);
  if (isShard) continue; // read through the index
  const reader = await openTensors(join(inDir, file));
  try {
    if (file.endsWith(".npy")) {
      const t = reader.tensors[0];
      await writeNpy(join(outDir, file), { dtype: t.dtype, shape: t.shape, bytes: await reader.read(t.name) });
    } else if (file.endsWith(".npz")) {
      const entries = [];
      for (const t of reader.tensors) entries.push({ name: t.name, dtype: t.dtype, shape: t.shape, bytes: await reader.read(t.name) });
      await writeNpz(join(outDir, file), entries, { compress: file.startsWith("deflated") });
    } else if (file.endsWith(".safetensors")) {
      await toSafetensors(reader, join(outDir, file));
    }
    await toSafetensors(reader, join(outDir, `${basename(file)}.as.safetensors`));
    count++;
  } finally {
    await reader.close();
  }
}
console.log(`kquant read and rewrote ${count} inputs into ${outDir}`);
