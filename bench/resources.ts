/**
 * What processes and the machine use, from `/proc`: a process's RSS and CPU
 * seconds, the machine's CPU counters, and what a measured window cost
 * (server, generator and machine CPU).
 *
 * @module
 */

import process from "node:process";

/** Reads a /proc file through cat: Deno reads /proc only with --allow-all. */
function proc(path: string): string {
  const { stdout } = new Deno.Command("cat", { args: [path] }).outputSync();
  return new TextDecoder().decode(stdout);
}

/**
 * The resident memory of process `pid`, in KB.
 *
 * @example
 * ```ts
 * import { rssKb } from "./resources.ts";
 * console.log(rssKb(Deno.pid));
 * ```
 */
export function rssKb(pid: number): number {
  const status = proc(`/proc/${pid}/status`);
  const kb = status.match(/VmRSS:\s+(\d+)/)?.[1];
  if (kb === undefined) throw new Error(`Server process ${pid} is gone`);
  return Number(kb);
}

/**
 * RSS of the processes `pids`, together, in KB.
 *
 * @example
 * ```ts
 * import { rssOf } from "./resources.ts";
 * console.log(rssOf([Deno.pid]));
 * ```
 */
export const rssOf = (pids: number[]): number =>
  pids.reduce((sum, pid) => sum + rssKb(pid), 0);

/**
 * CPU seconds (user + system) process `pid` has used.
 *
 * @example
 * ```ts
 * import { cpuSeconds } from "./resources.ts";
 * console.log(cpuSeconds(Deno.pid));
 * ```
 */
export function cpuSeconds(pid: number): number {
  const fields = proc(`/proc/${pid}/stat`).split(") ")[1]
    .split(" ");
  return (Number(fields[11]) + Number(fields[12])) / 100; // USER_HZ
}

/**
 * CPU seconds the processes `pids` have used, together.
 *
 * @example
 * ```ts
 * import { cpuOf } from "./resources.ts";
 * console.log(cpuOf([Deno.pid]));
 * ```
 */
export const cpuOf = (pids: number[]): number =>
  pids.reduce((sum, pid) => sum + cpuSeconds(pid), 0);

/** The machine's CPU counters (jiffies): all, idle (and waiting for I/O), and stolen by the hypervisor. */
export interface CpuTimes {
  total: number;
  idle: number;
  steal: number;
}

/**
 * The machine's CPU counters now.
 *
 * @example
 * ```ts
 * import { cpuTimes } from "./resources.ts";
 * const { total, steal } = cpuTimes();
 * console.log(steal / total);
 * ```
 */
export function cpuTimes(): CpuTimes {
  const fields = proc("/proc/stat").split("\n")[0].trim().split(/\s+/)
    .slice(1).map(Number);
  return {
    total: fields.reduce((a, b) => a + b, 0),
    idle: fields[3] + (fields[4] ?? 0),
    steal: fields[7] ?? 0,
  };
}

/**
 * CPU seconds the main thread of process `pid` has used (its JavaScript
 * thread: a greeter over workers runs its sequencer there, each worker on
 * a thread of its own).
 *
 * @example
 * ```ts
 * import { mainThreadSeconds } from "./resources.ts";
 * console.log(mainThreadSeconds(Deno.pid));
 * ```
 */
export function mainThreadSeconds(pid: number): number {
  const fields = proc(`/proc/${pid}/task/${pid}/stat`).split(") ")[1]
    .split(" ");
  return (Number(fields[11]) + Number(fields[12])) / 100; // USER_HZ
}

/** What a measured window cost, CPU in % of a core. */
export interface WindowCosts {
  /** Its length, in seconds. */
  wall: number;
  /** Every process's, the generator's and other users' of the machine. */
  machineCpu: number;
  /** The measured servers' processes, summed. */
  serverCpu: number;
  /** The bench's own process: the generator. */
  generatorCpu: number;
  /** The first measured process's main thread alone. */
  mainThreadCpu: number;
}

/**
 * Starts a measured window: the returned function ends it and says what it
 * cost, server CPU being that of the processes `pids`, summed.
 *
 * @example
 * ```ts
 * import { measureCosts } from "./resources.ts";
 * const done = measureCosts([Deno.pid]);
 * const { wall, serverCpu } = done();
 * console.log(wall, serverCpu);
 * ```
 */
export function measureCosts(pids: number[]): () => WindowCosts {
  const cpu = cpuOf(pids);
  const main = mainThreadSeconds(pids[0]);
  const gen = process.cpuUsage();
  const machine = cpuTimes();
  const start = performance.now();
  return () => {
    const wall = (performance.now() - start) / 1000;
    const g = process.cpuUsage(gen);
    const now = cpuTimes();
    const busy = (now.total - now.idle) - (machine.total - machine.idle);
    return {
      wall,
      machineCpu: (busy / 100 / wall) * 100, // USER_HZ
      serverCpu: ((cpuOf(pids) - cpu) / wall) * 100,
      generatorCpu: ((g.user + g.system) / 1e6 / wall) * 100,
      mainThreadCpu: ((mainThreadSeconds(pids[0]) - main) / wall) * 100,
    };
  };
}
