// Every `pattern` of the JSON Schemas in schema/ compiles as an ECMA-262 regular expression with
// the `u` flag, as VS Code's YAML extension (yaml-language-server) compiles it: Python's `re`,
// which check_schema.py validates with, accepts some patterns JavaScript refuses (and the
// extension then silently skips the check).
//
//   node check_schema_patterns.mjs SCHEMA_FOLDER
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";

const folder = process.argv[2];
let failed = 0;
for (const file of readdirSync(folder).filter((f) => f.endsWith(".schema.json")).sort()) {
  const patterns = [];
  const walk = (o, at) => {
    if (Array.isArray(o)) o.forEach((v, i) => walk(v, `${at}/${i}`));
    else if (o && typeof o === "object") {
      if (typeof o.pattern === "string") patterns.push([at, o.pattern]);
      for (const [k, v] of Object.entries(o)) walk(v, `${at}/${k}`);
    }
  };
  walk(JSON.parse(readFileSync(join(folder, file), "utf8")), "");
  const bad = [];
  for (const [at, p] of patterns) {
    try {
      new RegExp(p, "u");
    } catch (e) {
      bad.push(`${at}: ${e.message}`);
    }
  }
  if (patterns.length > 0 && bad.length === 0) {
    console.log(`PASS schema/${file}: its ${patterns.length} patterns compile as JavaScript (u) regular expressions`);
  } else {
    failed++;
    console.log(`FAIL schema/${file}: ${patterns.length} patterns; ${bad.join("; ")}`);
  }
}
process.exit(failed ? 1 : 0);
