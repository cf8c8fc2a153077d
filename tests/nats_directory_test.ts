// Listings across instances over core NATS (lib/bus/nats/directory.ts): pages that
// must fit in one NATS message, merged so that paging misses no one.
import assert from "node:assert/strict";
import { waitFor } from "../testing/server.ts";
import { connect } from "@nats-io/transport-node";
import type { DirectoryPage, DirectoryQuery } from "../lib/bus/broker.ts";
import {
  fitPage,
  mergePages,
  natsDirectory,
} from "../lib/bus/nats/directory.ts";
import { natsServerMissing, startNatsServer } from "../testing/nats.ts";
import { UnavailableError } from "../lib/errors.ts";

const ignore = natsServerMissing() !== undefined;

interface Entry {
  id: number;
  data: string;
}

/** An instance's listing over `ids`, as Hub.page() answers. */
function lister(ids: number[], data: string) {
  return (query: DirectoryQuery): DirectoryPage<Entry> => {
    const after = ids.filter((id) => id > query.after);
    return {
      entries: after.slice(0, query.limit).map((id) => ({ id, data })),
      total: ids.length,
      more: after.length > query.limit,
    };
  };
}

Deno.test("fitPage() leaves entries out from the end until the page fits, and says more follow", () => {
  const page = {
    entries: Array.from({ length: 10 }, (_, i) => ({ id: i + 1 })),
    total: 10,
    more: false,
  };
  assert.equal(fitPage(page, 10_000), JSON.stringify(page));
  const fitted = JSON.parse(fitPage(page, 100));
  assert.ok(JSON.stringify(fitted).length <= 100);
  assert.ok(fitted.entries.length >= 1 && fitted.entries.length < 10);
  assert.deepEqual(
    fitted.entries,
    page.entries.slice(0, fitted.entries.length),
  );
  assert.equal(fitted.more, true);
  assert.equal(fitted.total, 10);
  assert.equal(JSON.parse(fitPage(page, 1)).entries.length, 1, "never none");
});

Deno.test("mergePages() stops at the last entry of an instance that has more", () => {
  const merged = mergePages<{ id: number }>([
    { entries: [{ id: 1 }, { id: 4 }], total: 5, more: true },
    {
      entries: [{ id: 2 }, { id: 3 }, { id: 5 }, { id: 6 }],
      total: 4,
      more: false,
    },
  ], 10);
  assert.deepEqual(merged.entries.map((e) => e.id), [1, 2, 3, 4]);
  assert.equal(merged.more, true);
  assert.equal(merged.total, 9);
});

Deno.test({
  name:
    "natsDirectory() lists an instance whose page would be over NATS's max_payload, and paging on lists every entry once",
  ignore,
  async fn() {
    await using nats = await startNatsServer();
    const a = await connect({ servers: [nats.url] });
    const b = await connect({ servers: [nats.url] });
    // A's 200 entries of 9 KB (9 of 64 long topics and a long name): 1.8 MB
    // in one answer, over nats-server's default max_payload of 1 MiB.
    const big = natsDirectory(
      a,
      "g.directory",
      lister(
        Array.from({ length: 200 }, (_, i) => 2 * i + 1),
        "x".repeat(9000),
      ),
    );
    const small = natsDirectory(
      b,
      "g.directory",
      lister(Array.from({ length: 200 }, (_, i) => 2 * i + 2), "y"),
    );
    try {
      // Instances learn of each other within a round trip of starting.
      await waitFor(
        "B to hear of A",
        async () => (await small.list({ after: 0, limit: 1 })).total === 400,
      );
      const seen: number[] = [];
      let after = 0;
      for (let round = 0; round < 50; round++) {
        const page = await small.list({ after, limit: 1000 });
        assert.equal(page.total, 400, `round ${round}: every instance counted`);
        seen.push(...page.entries.map((entry) => entry.id));
        if (!page.more) break;
        after = page.entries.at(-1)!.id;
      }
      assert.deepEqual(seen, Array.from({ length: 400 }, (_, i) => i + 1));
    } finally {
      big.close();
      small.close();
      await a.close();
      await b.close();
    }
  },
});

Deno.test({
  name:
    "natsDirectory() refuses a listing with UnavailableError when NATS is unreachable, rather than listing no one",
  ignore,
  async fn() {
    await using nats = await startNatsServer();
    const nc = await connect({
      servers: [nats.url],
      maxReconnectAttempts: -1,
      reconnectTimeWait: 250,
    });
    const directory = natsDirectory(
      nc,
      "g.directory",
      lister([1, 2], "here"),
    );
    try {
      const page = await directory.list({ after: 0, limit: 10 });
      assert.equal(page.total, 2);
      await nats.stop();
      await assert.rejects(
        directory.list({ after: 0, limit: 10 }),
        (error) =>
          error instanceof UnavailableError &&
          /no instance answered/.test(error.message),
      );
    } finally {
      directory.close();
      await nc.close();
    }
  },
});
