/**
 * The V8 heap of this process after a full garbage collection, for tests
 * that bound what an attack leaves behind (without `--expose-gc` on the
 * command line: the flag is set at run time and `gc` taken from a context).
 *
 * @module
 */

import v8 from "node:v8";
import vm from "node:vm";

let collect: (() => void) | undefined;

/**
 * Bytes of V8 heap in use after two full collections (the second takes
 * what the first's finalizers let go).
 *
 * @example
 * ```ts ignore
 * const before = heapAfterGc();
 * await attack();
 * assert.ok(heapAfterGc() - before < 8 * 2 ** 20);
 * ```
 */
export function heapAfterGc(): number {
  if (!collect) {
    v8.setFlagsFromString("--expose-gc");
    collect = vm.runInNewContext("gc") as () => void;
  }
  collect();
  collect();
  return Deno.memoryUsage().heapUsed;
}
