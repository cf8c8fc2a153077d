// Listings across instances over core NATS (lib/bus/nats/directory.ts): pages that
// must fit in one NATS message, merged so that paging misses no one.
import assert from "node:assert/strict";
import { waitFor } from "../testing/server.ts";
import { connect } from "@nats-io/transport-node";
import {
  type DirectoryPage,
  type DirectoryQuery,
  mergePages,
} from "../lib/bus/broker.ts";
import { fitPage, natsDirectory } from "../lib/bus/nats/directory.ts";
import { natsServerMissing, startNatsServer } from "../testing/nats.ts";
import { UnavailableError } from "../lib/errors.ts";
import { Announcers, SILENT_MS } from "../lib/bus/nats/announcers.ts";
import {
  readAnswer,
  readQuery,
  RefusedAnswer,
} from "../lib/bus/nats/directory_answers.ts";

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
  // An id two instances claim (one forged it) is listed once.
  const twice = mergePages<{ id: number }>([
    { entries: [{ id: 1 }, { id: 2 }], total: 2, more: false },
    { entries: [{ id: 2 }], total: 1, more: false },
  ], 10);
  assert.deepEqual(twice.entries.map((e) => e.id), [1, 2]);
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

Deno.test("Announcers: ids that are not instance ids are ignored, their number is bounded, and one that did not answer is not waited for until it answers or SILENT_MS passed", () => {
  let now = 0;
  const self = crypto.randomUUID();
  const announcers = new Announcers(self, { now: () => now, max: 3 });
  const [a, b, c, d] = Array.from({ length: 4 }, () => crypto.randomUUID());
  for (
    const junk of ["x here", `${a} here extra`, `${a} maybe`, `${self} here`]
  ) {
    assert.equal(announcers.heard(junk), false, junk);
  }
  assert.deepEqual(announcers.expected(), new Set([self]));
  assert.equal(announcers.heard(`${a} here`), true);
  assert.equal(announcers.heard(`${a} here`), false, "known already");
  announcers.heard(`${b} here`);
  announcers.heard(`${c} here`);
  assert.equal(announcers.heard(`${d} here`), false, "over the bound");
  assert.deepEqual(announcers.expected(), new Set([self, a, b, c]));
  announcers.missed([a, b]);
  assert.deepEqual(announcers.expected(), new Set([self, c]));
  announcers.answered(a);
  assert.deepEqual(announcers.expected(), new Set([self, a, c]));
  now += 3_001;
  announcers.heard(`${b} here`);
  announcers.heard(`${c} here`);
  assert.deepEqual(announcers.expected(), new Set([self, c]), "a went quiet");
  for (; now < SILENT_MS + 1; now += 1_000) announcers.heard(`${b} here`);
  assert.deepEqual(announcers.expected(), new Set([self, b]), "b again");
  announcers.heard(`${b} gone`);
  assert.deepEqual(announcers.expected(), new Set([self]));
});

Deno.test("readAnswer() refuses an answer a listing cannot use, whole, with its reason; readQuery() bounds queries", () => {
  const query = { after: 10, limit: 2 };
  const instance = crypto.randomUUID();
  const page = (entries: unknown[], total: unknown = entries.length) => ({
    instance,
    entries,
    total,
    more: false,
  });
  const entry = (value: unknown) => {
    if ((value as { bad?: boolean }).bad) throw new RangeError("it is bad");
    return value as { id: number };
  };
  assert.deepEqual(readAnswer(page([{ id: 11 }, { id: 20 }]), query, entry), {
    instance,
    page: { entries: [{ id: 11 }, { id: 20 }], total: 2, more: false },
  });
  const refused: [unknown, string, RegExp][] = [
    ["nope", "malformed", /not a page/],
    [{ ...page([]), instance: "forged" }, "malformed", /not a page/],
    [
      page([{ id: 11 }, { id: 12 }, { id: 13 }]),
      "entries",
      /3 entries where at most 2/,
    ],
    [page([{ id: 10 }]), "id", /entry id 10 is not a safe integer above 10/],
    [page([{ id: 12 }, { id: 11 }]), "id", /above 12/],
    [page([{ id: 2 ** 53 }]), "id", /not a safe integer/],
    [page([{ id: 11, bad: true }]), "entry", /entry 11: it is bad/],
    [page([{ id: 11 }], 10_000_001), "total", /not a count from 1 to 10000000/],
    [page([{ id: 11 }], 0), "total", /not a count from 1/],
    [page([{ id: 11 }], 1e18), "total", /not a count/],
  ];
  for (const [raw, reason, message] of refused) {
    assert.throws(
      () => readAnswer(raw, query, entry),
      (error) =>
        error instanceof RefusedAnswer && error.reason === reason &&
        message.test(error.message),
      JSON.stringify(raw),
    );
  }
  assert.deepEqual(readQuery({ after: 3, limit: 1000, topic: "news" }), {
    after: 3,
    limit: 1000,
    topic: "news",
  });
  for (
    const bad of [
      null,
      { after: -1, limit: 1 },
      { after: "3", limit: 1 },
      { after: 0, limit: 1001 },
      { after: 0, limit: 0 },
      { after: 0, limit: 1, topic: "x".repeat(300) },
    ]
  ) {
    assert.throws(() => readQuery(bad), RangeError, JSON.stringify(bad));
  }
});

Deno.test({
  name:
    "natsDirectory() leaves out forged answers (counted by reason), answers no forged query, and does not wait again for 200 announcers that never answer",
  ignore,
  async fn() {
    await using nats = await startNatsServer();
    const nc = await connect({ servers: [nats.url] });
    const forger = await connect({ servers: [nats.url] });
    const refusals: string[] = [];
    const waitMs = 3_000;
    const directory = natsDirectory(nc, "g.directory", lister([1, 2], "here"), {
      waitMs,
      onRefused: (reason) => refusals.push(reason),
    });
    await nc.flush(); // its subscriptions are in place
    // 200 announcers that never answer, alive all along.
    const ids = Array.from({ length: 200 }, () => crypto.randomUUID());
    const announce = () => {
      for (const id of ids) forger.publish("g.directory.alive", `${id} here`);
    };
    announce();
    const beat = setInterval(announce, 1_000);
    // And one that answers every listing with pages no one may use.
    const forged = [
      { entries: [{ id: 3 }], total: 10_000_001, more: false },
      { entries: [{ id: 0 }], total: 1, more: false },
      {
        entries: Array.from({ length: 11 }, (_, i) => ({ id: i + 3 })),
        total: 11,
        more: false,
      },
      "not json",
    ];
    const answering = forger.subscribe("g.directory", {
      callback: (_, message) => {
        for (const page of forged) {
          message.respond(
            typeof page === "string" ? page : JSON.stringify(page),
          );
        }
      },
    });
    try {
      // The forger's messages reached the server, then the directory's
      // connection (its pong comes after them).
      await forger.flush();
      await nc.flush();
      const first = await directory.list({ after: 0, limit: 10 });
      assert.deepEqual(first.entries.map((e) => e.id), [1, 2]);
      assert.equal(first.total, 2);
      assert.deepEqual(refusals.sort(), [
        "entries",
        "id",
        "malformed",
        "total",
      ]);
      // They did not answer: the next listings wait for this instance only.
      for (let round = 0; round < 3; round++) {
        const started = performance.now();
        const page = await directory.list({ after: 0, limit: 10 });
        assert.deepEqual(page.entries.map((e) => e.id), [1, 2]);
        const took = performance.now() - started;
        assert.ok(took < waitMs / 2, `listing ${round} took ${took} ms`);
      }
      // A query that is not one gets no answer (and ends nothing).
      const junk = await forger.requestMany(
        "g.directory",
        JSON.stringify({ after: "x", limit: 1e9 }),
        { strategy: "timer", maxWait: 300 },
      );
      const answers: string[] = [];
      for await (const answer of junk) answers.push(answer.string());
      assert.deepEqual(
        answers,
        forged.map((p) => typeof p === "string" ? p : JSON.stringify(p)),
        "only the forger itself answered it",
      );
    } finally {
      clearInterval(beat);
      answering.unsubscribe();
      directory.close();
      await forger.close();
      await nc.close();
    }
  },
});
