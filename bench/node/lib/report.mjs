// Medians over the rounds of scripts/bench peers and the table it prints: one
// row per system, absolute figures, then ratios against the Redis adapter, the
// MongoDB adapter and the raw MongoDB floor; a second table breaks the CPU
// down per process.
//
// Stateless.
import { cpuPer10k } from "./cells.mjs";

export function median(values) {
  const v = values.filter((x) => typeof x === "number" && Number.isFinite(x)).sort((a, b) => a - b);
  if (v.length === 0) return null;
  const mid = Math.floor(v.length / 2);
  return v.length % 2 ? v[mid] : (v[mid - 1] + v[mid]) / 2;
}

/**
 * Medians per system from the raw rounds: rounds[r][key] = { cells, processes, error }.
 * Returns { [key]: summary }.
 */
export function summarize(systems, rounds, opts) {
  const out = {};
  for (const system of systems) {
    const runs = rounds.map((r) => r[system.key]).filter(Boolean);
    const ok = runs.filter((r) => r.cells);
    const cells = (name) => ok.map((r) => r.cells[name]).filter(Boolean);
    const s = { label: system.label, runs: runs.length, failed: runs.filter((r) => r.error).map((r) => r.error) };
    s.saturation = {};
    for (const bytes of opts.sizes) {
      const c = cells(`burst-${bytes}`);
      s.saturation[bytes] = {
        eventsPerSecond: median(c.map((x) => x.eventsPerSecond)),
        roundsWithLoss: c.filter((x) => x.lost > 0).length,
        maxLostFraction: Math.max(0, ...c.map((x) => x.lost / (x.events * opts.clients))),
        rounds: c.length,
      };
    }
    s.paced = {};
    for (const rate of opts.rates) {
      const c = cells(`rate-${rate}`);
      s.paced[rate] = {
        p50: median(c.map((x) => x.latency?.p50)),
        p99: median(c.map((x) => x.latency?.p99)),
        reached: median(c.map((x) => x.deliveredEventsPerSecond)),
        sustained: c.filter((x) => x.sustained).length,
        rounds: c.length,
      };
    }
    const cpuOf = (name) =>
      ok.map((r) => (r.cells[name] ? cpuPer10k(r.cells[name], r.processes) : null)).filter(Boolean);
    const cpuSat = cpuOf(`burst-${opts.sizes[0]}`);
    s.cpu = {
      total: median(cpuSat.map((c) => c.total)),
      per: Object.fromEntries(
        [...new Set(cpuSat.flatMap((c) => Object.keys(c.per)))].map((role) => [role, median(cpuSat.map((c) => c.per[role]))]),
      ),
      pacedTotal: median(cpuOf(`rate-${opts.rates[0]}`).map((c) => c.total)),
    };
    // Right after start: the first burst, and its rate over the settled burst of the same size (per round).
    const first = opts.sizes[0];
    s.start = {
      eventsPerSecond: median(cells(`start-${first}`).map((x) => x.eventsPerSecond)),
      ofSettled: median(ok.map((r) => (r.cells[`start-${first}`] && r.cells[`burst-${first}`]?.eventsPerSecond
        ? r.cells[`start-${first}`].eventsPerSecond / r.cells[`burst-${first}`].eventsPerSecond : null))),
    };
    // Whole-system CPU per 10k events of every cell (clients apart).
    s.cpu.cells = Object.fromEntries(
      [`start-${first}`, ...opts.sizes.map((b) => `burst-${b}`), ...opts.rates.map((r) => `rate-${r}`)]
        .map((name) => [name, median(cpuOf(name).map((c) => c.total))]),
    );
    s.daemonPeakMiB = median(ok.map((r) => r.daemonPeakMiB));
    for (const what of ["fetchSockets", "emitWithAck"]) {
      const c = cells(what);
      const supported = what === "fetchSockets" ? system.fetch : system.ack;
      s[what] = !supported ? null : { p50: median(c.map((x) => x.p50)), p99: median(c.map((x) => x.p99)), rounds: c.length };
    }
    out[system.key] = s;
  }
  return out;
}

const int = (x) => (x === null || x === undefined ? "–" : Math.round(x).toLocaleString("en-US"));
function ms(x) {
  if (x === null || x === undefined) return "–";
  if (x >= 100) return int(x);
  return x >= 10 ? x.toFixed(1) : x.toFixed(2);
}
function ratio(a, b) {
  if (!a || !b) return "–";
  const r = a / b;
  return r >= 10 ? r.toFixed(0) : r >= 0.1 ? r.toFixed(2) : r.toPrecision(2);
}

function saturationCell(sat) {
  let cell = int(sat.eventsPerSecond);
  if (sat.roundsWithLoss) {
    cell += ` (lost in ${sat.roundsWithLoss}/${sat.rounds}, ≤ ${(sat.maxLostFraction * 100).toFixed(sat.maxLostFraction < 0.01 ? 2 : 0)} %)`;
  }
  return cell;
}

function pacedCell(p, rate) {
  if (!p.rounds) return "–";
  let cell = `${ms(p.p50)} / ${ms(p.p99)} ms`;
  if (p.sustained < p.rounds) cell += ` (${int(p.reached)}/s; sustained ${p.sustained}/${p.rounds})`;
  return cell;
}

const ok = (s) => s.runs - s.failed.length;

function roundTripCell(r, runs) {
  if (!r) return "n/a";
  if (!r.rounds) return "failed";
  return `${ms(r.p50)} ms${r.rounds < runs ? ` (failed in ${runs - r.rounds}/${runs})` : ""}`;
}

function markdown(header, rows) {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => String(r[i]).length)));
  const line = (cells) => `| ${cells.map((c, i) => String(c).padEnd(widths[i])).join(" | ")} |`;
  return [line(header), `|${widths.map((w) => "-".repeat(w + 2)).join("|")}|`, ...rows.map(line)].join("\n");
}

/** The main table (markdown) and the CPU breakdown. */
export function tables(systems, summary, opts) {
  const sizeName = (b) => (b >= 1024 ? `${b / 1024} KiB` : `${b} B`);
  const rateName = (r) => `${r.toLocaleString("en-US")}/s`;
  const peers = [summary.redis, summary["mongo-adapter"], summary.floor];
  const ratios = (get, s) => peers.map((p) => (p ? ratio(get(s), get(p)) : "–")).join(" / ");
  const header = [
    "system",
    ...opts.sizes.map((b) => `${sizeName(b)} ev/s`),
    ...opts.rates.map((r) => `p50 / p99 at ${rateName(r)}`),
    `${sizeName(opts.sizes[0])} right after start ev/s (÷ settled)`,
    `CPU s / 10k ev (${sizeName(opts.sizes[0])})`,
    "daemon RSS max",
    "fetchSockets p50",
    "emitWithAck p50",
    ...opts.sizes.map((b) => `${sizeName(b)} ÷ R / M / F`),
    `p50 ${rateName(opts.rates[0])} ÷ R / M / F`,
  ];
  const rows = systems.filter((s) => summary[s.key]?.runs).map((system) => {
    const s = summary[system.key];
    return [
      s.label + (s.failed.length ? ` (failed ${s.failed.length}/${s.runs})` : ""),
      ...opts.sizes.map((b) => saturationCell(s.saturation[b])),
      ...opts.rates.map((r) => pacedCell(s.paced[r], r)),
      s.start.eventsPerSecond === null ? "–" : `${int(s.start.eventsPerSecond)} (${ratio(s.start.ofSettled, 1)})`,
      s.cpu.total === null ? "–" : s.cpu.total.toFixed(2),
      s.daemonPeakMiB === null ? "" : `${int(s.daemonPeakMiB)} MiB`,
      roundTripCell(s.fetchSockets, ok(s)),
      roundTripCell(s.emitWithAck, ok(s)),
      ...opts.sizes.map((b) => ratios((x) => x.saturation[b].eventsPerSecond, s)),
      ratios((x) => x.paced[opts.rates[0]].p50, s),
    ];
  });
  const order = ["server", "sender server", "receiver server", "daemon", "daemon (sender)", "daemon (receiver)", "redis-server", "mongod"];
  const rank = (role) => (order.includes(role) ? order.indexOf(role) : order.length);
  const roles = [...new Set(systems.flatMap((s) => Object.keys(summary[s.key]?.cpu.per ?? {})))].sort((a, b) => rank(a) - rank(b));
  const cpuHeader = ["system", ...roles, "total", `total at ${rateName(opts.rates[0])}`];
  const cpuRows = systems.filter((s) => summary[s.key]?.runs).map((system) => {
    const c = summary[system.key].cpu;
    const f = (x) => (x === null || x === undefined ? "" : x.toFixed(2));
    return [summary[system.key].label, ...roles.map((r) => f(c.per[r])), f(c.total), f(c.pacedTotal)];
  });
  const shown = systems.filter((s) => summary[s.key]?.runs);
  const cellNames = Object.keys(summary[shown[0]?.key]?.cpu.cells ?? {});
  const cellLabel = (name) => {
    const [kind, n] = name.split("-");
    if (kind === "start") return `${sizeName(Number(n))} right after start`;
    return kind === "burst" ? `${sizeName(Number(n))} burst` : `${rateName(Number(n))}`;
  };
  const cellsRows = shown.map((system) => {
    const c = summary[system.key].cpu.cells;
    const redis = summary.redis?.cpu.cells;
    return [summary[system.key].label, ...cellNames.map((n) => {
      if (c[n] === null || c[n] === undefined) return "–";
      const r = redis?.[n] && system.key !== "redis" ? ` (${ratio(c[n], redis[n])} R)` : "";
      return `${c[n].toFixed(2)}${r}`;
    })];
  });
  return {
    main: markdown(header, rows),
    cpu: markdown(cpuHeader, cpuRows),
    cells: markdown(["system", ...cellNames.map(cellLabel)], cellsRows),
  };
}
