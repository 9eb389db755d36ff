// TypeScript types of the daemon's API, generated from the proto the package
// ships (proto/, copied by copy-proto.mjs) into src/generated/ at every build,
// so the adapter's messages can never drift from bridge.proto. The options
// match how src/connection.ts loads the proto at run time.
import { execFileSync } from "node:child_process";
import { rmSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
const packageRoot = join(here, "..");
export const generatorArgs = [
  "--keepCase",
  "--longs=String",
  "--enums=Number",
  "--defaults",
  "--oneofs",
  "--includeComments",
  "-I",
  "proto",
];

/** Generates the types of proto/siobridge/v1/bridge.proto into `outDir`. */
export function generate(outDir) {
  rmSync(outDir, { recursive: true, force: true });
  const bin = join(packageRoot, "node_modules", "@grpc", "proto-loader", "build", "bin", "proto-loader-gen-types.js");
  execFileSync(process.execPath, [bin, ...generatorArgs, "-O", outDir, "siobridge/v1/bridge.proto"], {
    cwd: packageRoot,
    stdio: ["ignore", "ignore", "inherit"],
  });
}

if (process.argv[1] === fileURLToPath(import.meta.url)) generate(join(packageRoot, "src", "generated"));
