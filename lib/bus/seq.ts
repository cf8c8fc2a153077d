/**
 * Sequence numbers as text: a cursor's `seq` arrives as a decimal string (a
 * uint64 on the wire, `longs: String` in proto-loader; `EPOCH:SEQ` on the
 * command line) and is parsed exactly, never rounded by `Number()`.
 *
 * @module
 */

/** The largest `seq` the hub can hold exactly (2^53 - 1). */
export const MAX_SEQ: number = Number.MAX_SAFE_INTEGER;

/**
 * `text` as a sequence number, or `undefined` when it is not a decimal
 * integer from 0 to {@linkcode MAX_SEQ}.
 *
 * @example
 * ```ts
 * import { parseSeq } from "./seq.ts";
 * parseSeq("42"); // 42
 * parseSeq("18446744073709551615"); // undefined: past MAX_SEQ
 * ```
 */
export function parseSeq(text: string | number): number | undefined {
  const digits = String(text);
  if (!/^\d{1,20}$/.test(digits)) return undefined;
  return BigInt(digits) <= BigInt(MAX_SEQ) ? Number(digits) : undefined;
}
