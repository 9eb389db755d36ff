// The package ships the daemon's API definition; it lives at the repository
// root (proto/) so that every client language generates from the same file.
import { cpSync, mkdirSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
const source = join(here, "..", "..", "..", "proto", "siobridge", "v1", "bridge.proto");
const target = join(here, "..", "proto", "siobridge", "v1");
mkdirSync(target, { recursive: true });
cpSync(source, join(target, "bridge.proto"));
