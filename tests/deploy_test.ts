// What docs/operations.md gives operators to deploy with: the systemd unit
// (deploy/systemd/greeter.service) and the Kubernetes probe stanza, held to
// the server's health names, its port and its drain.

/** The fenced blocks of `language` on the operations page. */
function operationsBlocks(language: string): string[] {
  return docBlocks(language, ["docs/operations.md"]).map((block) => block.text);
}

import assert from "node:assert/strict";
import { join } from "node:path";
import { DEFAULT_GRACE_MS } from "../lib/defaults.ts";
import { HEALTH_SERVICES, READINESS_SERVICE } from "../lib/grpc/health.ts";
import { DEFAULT_PORT } from "../lib/server/options.ts";
import { ROOT } from "../testing/process.ts";
import { docBlocks } from "../testing/docs.ts";

const SYSTEMD_ANALYZE = ["/usr/bin/systemd-analyze", "/bin/systemd-analyze"]
  .find((path) => {
    try {
      return Deno.statSync(path).isFile;
    } catch {
      return false;
    }
  });
if (!SYSTEMD_ANALYZE) {
  console.warn(
    "the unit's systemd-analyze check is ignored: systemd-analyze is not installed (apt-get install systemd)",
  );
}

/** `--grace MS` of a command line, or the default. */
function graceOf(command: string): number {
  const match = command.match(/--grace[ =](\d+)/);
  return match ? Number(match[1]) : DEFAULT_GRACE_MS;
}

const UNIT = join(ROOT, "deploy/systemd/greeter.service");

Deno.test("docs/operations.md shows deploy/systemd/greeter.service as it is, and its stop outlasts the drain", async () => {
  const unit = await Deno.readTextFile(UNIT);
  assert.deepEqual(operationsBlocks("ini"), [unit]);
  const setting = (key: string) =>
    unit.match(new RegExp(`^${key}=(.*)$`, "m"))?.[1];
  const start = setting("ExecStart")!;
  assert.match(start, /^\/usr\/local\/bin\/greeter serve /);
  // SIGTERM to the greeter alone, which drains; SIGKILL only past the timeout.
  assert.equal(setting("KillMode"), "mixed");
  assert.equal(setting("KillSignal"), "SIGTERM");
  const timeoutMs = Number(setting("TimeoutStopSec")) * 1000;
  assert.ok(
    timeoutMs >= graceOf(start) + 5_000,
    `TimeoutStopSec (${timeoutMs} ms) must outlast --grace (${
      graceOf(start)
    } ms) with room to exit`,
  );
  // The token file is reloaded by SIGHUP, as `serve` does.
  assert.equal(setting("ExecReload"), "/bin/kill -HUP $MAINPID");
  assert.match(start, /--token-file \S+/);
});

Deno.test({
  name: "systemd-analyze verify finds nothing to say of the unit",
  ignore: !SYSTEMD_ANALYZE,
  async fn() {
    const dir = await Deno.makeTempDir({ prefix: "greeter-unit-" });
    try {
      // verify insists that ExecStart's program exists: a stand-in for the
      // executable, everything else as the file has it.
      const program = join(dir, "greeter");
      await Deno.writeTextFile(program, "#!/bin/sh\n");
      await Deno.chmod(program, 0o755);
      const unit = (await Deno.readTextFile(UNIT)).replaceAll(
        "/usr/local/bin/greeter",
        program,
      );
      await Deno.writeTextFile(join(dir, "greeter.service"), unit);
      const { code, stdout, stderr } = await new Deno.Command(
        SYSTEMD_ANALYZE!,
        {
          args: ["verify", join(dir, "greeter.service")],
          stdout: "piped",
          stderr: "piped",
        },
      ).output();
      const decoder = new TextDecoder();
      assert.equal(decoder.decode(stdout) + decoder.decode(stderr), "");
      assert.equal(code, 0);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test("docs/operations.md's Kubernetes stanza listens on every interface, probes liveness on \"\" and readiness on helloworld.Greeter, at the server's port, and its grace period outlasts preStop and the drain", () => {
  const stanzas = (operationsBlocks("yaml")).filter((block) =>
    block.includes("livenessProbe")
  );
  assert.equal(stanzas.length, 1);
  const [yaml] = stanzas;
  const number = (pattern: RegExp) => {
    const match = yaml.match(pattern);
    assert.ok(match, `${pattern} not in the stanza`);
    return Number(match[1]);
  };
  const args = yaml.match(/args:\n((?:\s+- .*\n)+)/)![1].split("\n")
    .map((line) => line.trim().replace(/^- /, "").replaceAll('"', ""))
    .join(" ");
  // The kubelet probes the pod's address, which 127.0.0.1 is not.
  assert.match(args, /--host ::/);
  const graceMs = graceOf(args);
  const sleepS = number(/preStop:[^]*?sleep: \{ seconds: (\d+) \}/);
  const periodS = number(/terminationGracePeriodSeconds: (\d+)/);
  assert.ok(
    periodS * 1000 >= sleepS * 1000 + graceMs + 5_000,
    `terminationGracePeriodSeconds ${periodS} must outlast preStop (${sleepS} s) and --grace (${graceMs} ms) with room to exit`,
  );
  const liveness = yaml.match(/livenessProbe:.*\n\s+grpc: \{ ([^}]*) \}/)![1];
  const readiness = yaml.match(/readinessProbe:.*\n\s+grpc: \{ ([^}]*) \}/)![1];
  // No service: Kubernetes asks "", the name that stays SERVING until the drain.
  assert.equal(liveness, `port: ${DEFAULT_PORT}`);
  assert.equal(
    readiness,
    `port: ${DEFAULT_PORT}, service: ${READINESS_SERVICE}`,
  );
  assert.deepEqual(HEALTH_SERVICES, ["", READINESS_SERVICE]);
  // A liveness probe cannot cut a drain short.
  const livenessFailS = number(/livenessProbe:[^]*?periodSeconds: (\d+)/) *
    number(/livenessProbe:[^]*?failureThreshold: (\d+)/);
  assert.ok(livenessFailS * 1000 > graceMs);
});
