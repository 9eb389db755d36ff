// CPU time and memory of the benchmark's processes, from /proc: utime + stime
// of /proc/<pid>/stat (every thread of the process), VmRSS and VmHWM (peak
// RSS) of /proc/<pid>/status; the peak is reset through /proc/<pid>/clear_refs
// so that it can be read per cell.
//
// Stateless; synchronous reads (a few per cell).
import { execFileSync } from "node:child_process";
import { readFileSync, writeFileSync } from "node:fs";

const ticksPerSecond = Number(execFileSync("getconf", ["CLK_TCK"], { encoding: "utf8" }).trim()) || 100;

/** CPU seconds used so far by `pid` (user + system), or null when it is gone. */
export function cpuSeconds(pid) {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    // The command name may hold spaces and parentheses: fields count from the last ")".
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return (Number(fields[11]) + Number(fields[12])) / ticksPerSecond;
  } catch {
    return null;
  }
}

/**
 * Resolves once `pid` used less than `share` of a core over `windowSeconds`,
 * to the seconds waited; to null when that did not happen within
 * `limitSeconds` (or the process is gone).
 */
export async function untilQuiet(pid, { share = 0.1, windowSeconds = 2, limitSeconds = 60 } = {}) {
  const startedAt = Date.now();
  while (Date.now() - startedAt < limitSeconds * 1000) {
    const before = cpuSeconds(pid);
    await new Promise((resolve) => setTimeout(resolve, windowSeconds * 1000));
    const after = cpuSeconds(pid);
    if (before === null || after === null) return null;
    if (after - before < share * windowSeconds) return (Date.now() - startedAt) / 1000;
  }
  return null;
}

/** { rssMiB, peakMiB } of `pid`, or null when it is gone. */
export function memory(pid) {
  try {
    const status = readFileSync(`/proc/${pid}/status`, "utf8");
    const kib = (key) => Number(new RegExp(`^${key}:\\s+(\\d+)`, "m").exec(status)?.[1] ?? NaN);
    return { rssMiB: kib("VmRSS") / 1024, peakMiB: kib("VmHWM") / 1024 };
  } catch {
    return null;
  }
}

/** Starts a new peak-RSS window for `pid`; false when the kernel refuses. */
export function resetPeak(pid) {
  try {
    writeFileSync(`/proc/${pid}/clear_refs`, "5");
    return true;
  } catch {
    return false;
  }
}
