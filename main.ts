/**
 * The greeter command line: `greeter serve` or `greeter client`. Parses,
 * dispatches, turns signals into aborts (and SIGHUP into the server's
 * reload), prints `error: …` once, and sets the exit code. Nothing else in
 * the project exits or handles signals.
 *
 * @module
 */

import {
  CLIENT_USAGE,
  ENV_VARS,
  parseClientArgs,
  parseServeArgs,
  SERVE_USAGE,
} from "./lib/cli/config.ts";
import { versionLine } from "./lib/cli/version.ts";
import { ConfigError } from "./lib/errors.ts";
import { askedFormat, failure, failureLines } from "./lib/cli/failure.ts";

const USAGE = `Usage: greeter <command> [options]

Commands:
  serve    run the Greeter gRPC server
  client   call a Greeter server and print what it sends

Run "greeter <command> --help" for a command's options, and
"greeter --version" for the version.
`;

/**
 * Signals within this many milliseconds of the first are that signal
 * delivered twice, not a second request. A terminal sends Ctrl-C to the
 * whole foreground process group and `deno task` forwards it to its child
 * again (so do `timeout` and systemd's `KillMode=control-group` with
 * SIGTERM): both copies arrive within milliseconds, while a person who wants
 * to cut a drain short presses again after seeing it take its time.
 */
const REPEAT_SIGNAL_WINDOW_MS = 1000;

/**
 * Runs `task` with a signal that aborts on the first SIGINT/SIGTERM (and,
 * with `hangup`, SIGHUP: the terminal went away); with `force`, another one
 * at least {@linkcode REPEAT_SIGNAL_WINDOW_MS} later exits at once (130),
 * else repeats are ignored. The listeners are removed
 * when it settles, unless a signal came: then a copy of it may still be on
 * its way (a loaded machine delivered `deno task`'s forwarded SIGINT after
 * the client had finished, and with no listener left it killed the process:
 * exit 130 instead of 0), so they stay, ignoring it, until the exit that
 * follows.
 */
async function untilInterrupted(
  task: (signal: AbortSignal) => Promise<void>,
  { force, hangup }: { force: boolean; hangup: boolean },
): Promise<void> {
  const controller = new AbortController();
  const signals: Deno.Signal[] = hangup
    ? ["SIGINT", "SIGTERM", "SIGHUP"]
    : ["SIGINT", "SIGTERM"];
  let firstAt: number | undefined;
  let settled = false;
  const onSignal = () => {
    const now = performance.now();
    if (settled) return;
    if (firstAt === undefined) {
      firstAt = now;
      controller.abort();
    } else if (force && now - firstAt >= REPEAT_SIGNAL_WINDOW_MS) {
      Deno.exit(130);
    }
  };
  for (const name of signals) Deno.addSignalListener(name, onSignal);
  try {
    await task(controller.signal);
  } finally {
    settled = true;
    if (firstAt === undefined) {
      for (const name of signals) Deno.removeSignalListener(name, onSignal);
    }
  }
}

/**
 * Calls `listener` on each SIGHUP (the serve command reloads its token file)
 * until the returned function is called.
 */
function onHangup(listener: () => void): () => void {
  Deno.addSignalListener("SIGHUP", listener);
  return () => Deno.removeSignalListener("SIGHUP", listener);
}

/**
 * How a failure is reported: as the client prints (text or JSON), whether
 * it used TLS, and whether the command line had been read.
 */
interface Reporting {
  format: "text" | "json";
  tls: boolean;
  parsed: boolean;
}

/**
 * Stack frames kept by errors in `serve`. Deno's Node-compatible errors
 * format their stack when created, and a connection that dies takes two
 * `ERR_STREAM_DESTROYED` with it per open stream, inside Deno's `node:http2`
 * (measured on 2.9.3: ~90 us each at V8's default of 10 frames, ~30 us at
 * 3). With 1,000 subscribers killed at once, that was most of the time
 * before the last of them was removed. Three frames still name the throw
 * site; our own errors are logged as messages.
 */
const SERVE_STACK_TRACE_LIMIT = 3;

/** Flags that print instead of running: they need no settings. */
const HELP_FLAGS = ["--help", "-h", "--version"];

async function main(args: string[], reporting: Reporting): Promise<number> {
  const [command, ...rest] = args;
  // Read only when settings are: `--version` and the usage need no
  // permission (`deno run main.ts --version` must not ask for one).
  const env = () =>
    rest.some((arg) => HELP_FLAGS.includes(arg))
      ? {}
      : Object.fromEntries(ENV_VARS.map((n) => [n, Deno.env.get(n)]));
  switch (command) {
    case "serve": {
      const parsed = parseServeArgs(rest, env());
      if (parsed.help) {
        console.log(parsed.version ? versionLine() : SERVE_USAGE);
        return 0;
      }
      reporting.parsed = true;
      Error.stackTraceLimit = SERVE_STACK_TRACE_LIMIT;
      // Each subcommand loads only its own code (the client no server parts).
      const { serve } = await import("./lib/cli/serve.ts");
      // SIGHUP reloads the token file when there is one; without one it is
      // what it always was, the terminal gone: drain and stop, rather than
      // run on orphaned, holding the port.
      const reloads = parsed.config.tokenFile !== undefined;
      await untilInterrupted(
        (signal) =>
          serve(parsed.config, signal, {
            onReload: reloads ? onHangup : undefined,
          }),
        // A drain can take --grace: a second Ctrl-C cuts it short.
        { force: true, hangup: !reloads },
      );
      return 0;
    }
    case "client": {
      // A bad command line is reported as the output was asked for.
      reporting.format = askedFormat(rest);
      const parsed = parseClientArgs(rest, env());
      if (parsed.help) {
        console.log(parsed.version ? versionLine() : CLIENT_USAGE);
        return 0;
      }
      // Errors as data too, for scripts that read --output json.
      reporting.format = parsed.config.output;
      reporting.tls = parsed.config.tls;
      reporting.parsed = true;
      const { client } = await import("./lib/cli/client.ts");
      const { LineWriter } = await import("./lib/cli/stdout.ts");
      const out = new LineWriter(Deno.stdout);
      // A reader that has gone (`| head -2`) ends the client as Ctrl-C does.
      // Its calls are cancelled at once: nothing for a second signal to cut
      // short, and a copy of the first one that a loaded machine delivers
      // late (deno task forwards it) must not turn exit 0 into 130.
      await untilInterrupted((signal) =>
        client(
          parsed.config,
          (line) => out.write(line),
          AbortSignal.any([signal, out.closed]),
        ), { force: false, hangup: true });
      return 0;
    }
    case undefined:
    case "help":
    case "-h":
    case "--help":
      console.log(USAGE);
      return 0;
    case "--version":
      console.log(versionLine());
      return 0;
    default:
      throw new ConfigError(
        `Unknown command "${command}": expected "serve" or "client"`,
      );
  }
}

if (import.meta.main) {
  let code: number;
  const reporting: Reporting = { format: "text", tls: false, parsed: false };
  try {
    code = await main(Deno.args, reporting);
  } catch (error) {
    const failed = failure(error, reporting);
    for (const line of failureLines(failed, reporting.format)) {
      console.error(line);
    }
    code = failed.exitCode;
  }
  // Explicit: a connection a peer keeps open must not keep the process alive.
  Deno.exit(code);
}
