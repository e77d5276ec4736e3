// Embeds the component type of a WIT world into a core Wasm module
// (wasm-tools component embed, through jco's bundled wasm-tools), reading the
// WIT as text: `jco embed --wit PATH` cannot open host paths from inside its
// WASI sandbox. Usage: node hack/embed-wit.mjs JCO_DIR WIT_FILE WORLD IN OUT
import { readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { pathToFileURL } from "node:url";

const [jcoDir, witFile, world, input, output] = process.argv.slice(2);
const mod = join(jcoDir, "node_modules/@bytecodealliance/jco-transpile/dist/wasm-tools.js");
const { componentEmbed } = await import(pathToFileURL(mod).href);
const out = await componentEmbed({
  binary: await readFile(input),
  witSource: (await readFile(witFile)).toString(),
  world,
});
await writeFile(output, out);
