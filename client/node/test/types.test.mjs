// The adapter's messages are the proto's: their types are generated from
// proto/siobridge/v1/bridge.proto at build time, each oneof is a discriminated
// union, the calls are typed by kind, and src/ has no `any` left.
import { test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, relative, resolve } from "node:path";
import { generate } from "../scripts/gen-types.mjs";

const root = resolve(import.meta.dirname, "..");

function files(dir) {
  return readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter((entry) => entry.isFile())
    .map((entry) => relative(dir, join(entry.parentPath ?? entry.path, entry.name)))
    .sort();
}

test("the types the adapter was built with are generated from the repository's bridge.proto", () => {
  const shipped = readFileSync(join(root, "proto", "siobridge", "v1", "bridge.proto"), "utf8");
  const source = readFileSync(join(root, "..", "..", "proto", "siobridge", "v1", "bridge.proto"), "utf8");
  assert.equal(shipped, source, "the package's proto/ is a copy of the repository's (npm run build)");
  const fresh = mkdtempSync(join(tmpdir(), "siobridge-types-"));
  try {
    generate(fresh);
    const built = join(root, "src", "generated");
    assert.deepEqual(files(built), files(fresh));
    for (const file of files(fresh)) {
      assert.equal(readFileSync(join(built, file), "utf8"), readFileSync(join(fresh, file), "utf8"), file);
    }
    assert.ok(files(fresh).includes(join("siobridge", "v1", "Command.ts")));
  } finally {
    rmSync(fresh, { recursive: true, force: true });
  }
});

test("the compiler rejects a wrong variant, a wrong request and a wrong answer", () => {
  const tsc = join(root, "node_modules", "typescript", "bin", "tsc");
  try {
    execFileSync(process.execPath, [tsc, "-p", join(root, "test", "types", "tsconfig.json")], { encoding: "utf8" });
  } catch (error) {
    assert.fail(`tsc: ${error.stdout}${error.stderr}`);
  }
});

test("src/ has no `any`", () => {
  const offenders = [];
  for (const file of readdirSync(join(root, "src")).filter((name) => name.endsWith(".ts"))) {
    readFileSync(join(root, "src", file), "utf8")
      .split("\n")
      .forEach((line, index) => {
        if (/(:|<|\bas)\s*any\b|\bany\[\]/.test(line.replace(/\/\/.*$/, ""))) offenders.push(`${file}:${index + 1}: ${line.trim()}`);
      });
  }
  assert.deepEqual(offenders, []);
});
