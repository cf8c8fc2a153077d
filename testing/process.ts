/**
 * Runs `main.ts` as users do: with the permission flags of the `deno.json`
 * task of the same name, so the tests exercise those flags too.
 *
 * @module
 */

import { join } from "node:path";

/** The project root. */
export const ROOT: string = join(import.meta.dirname!, "..");

const tasks: Record<string, string> = JSON.parse(
  Deno.readTextFileSync(join(ROOT, "deno.json")),
).tasks;

/** `deno run …flags main.ts <task>` argument list of a `deno.json` task. */
export function taskArgs(task: "serve" | "client"): string[] {
  const [deno, ...args] = tasks[task].split(/\s+/);
  if (deno !== "deno") throw new Error(`Task ${task} does not start with deno`);
  return args;
}

/**
 * `deno run` with a task's flags (its permissions), for another `script` of
 * the project and that script's `args`.
 */
export function scriptArgs(
  task: "serve" | "client",
  script: string,
  ...args: string[]
): string[] {
  return [...taskArgs(task).slice(0, -2), script, ...args]; // not main.ts <task>
}

/**
 * Environment for child processes (spawned with `clearEnv`: Deno adds the
 * parent's variables otherwise): no inherited `GREETER_*` settings, no
 * `INIT_CWD` (`deno task test` sets one, and `deno task` keeps one it finds),
 * and no upgrade check: Deno's own `CONNECT dl.deno.land:443` went through
 * the proxy a test named in the child's environment, and was counted there.
 */
function cleanEnv(env: Record<string, string> = {}): Record<string, string> {
  const base = Deno.env.toObject();
  for (const key of Object.keys(base)) {
    if (key.startsWith("GREETER_") || key === "INIT_CWD") delete base[key];
  }
  return { ...base, NO_COLOR: "1", DENO_NO_UPDATE_CHECK: "1", ...env };
}

/** The outcome of a finished `greeter client`. */
export interface ClientResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs `main.ts client ARGS…` to the end (bounded by `timeoutMs`). */
export async function runClient(
  args: string[],
  timeoutMs = 20_000,
  env?: Record<string, string>,
): Promise<ClientResult> {
  const child = new Deno.Command(Deno.execPath(), {
    args: [...taskArgs("client"), ...args],
    cwd: ROOT,
    env: cleanEnv(env),
    clearEnv: true, // else the parent's variables come back
    stdout: "piped",
    stderr: "piped",
    stdin: "null",
  }).spawn();
  return await finished(child, timeoutMs);
}

/** `child`'s exit code and output, once it ends; killed past `timeoutMs`. */
async function finished(
  child: Deno.ChildProcess,
  timeoutMs: number,
): Promise<ClientResult> {
  const timer = setTimeout(() => child.kill("SIGKILL"), timeoutMs);
  try {
    const out = await child.output();
    const decode = (b: Uint8Array) => new TextDecoder().decode(b);
    return {
      code: out.code,
      stdout: decode(out.stdout),
      stderr: decode(out.stderr),
    };
  } finally {
    clearTimeout(timer);
  }
}

/** A loopback port that was free a moment ago (for programs that cannot be told port 0). */
export function freePort(): number {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const { port } = listener.addr as Deno.NetAddr;
  listener.close();
  return port;
}

/** Options of {@linkcode LineProcess}. */
export interface LineProcessOptions {
  /** Program to run. Default: this Deno. */
  command?: string;
  /** Working directory. Default: the project root. */
  cwd?: string;
  /** Extra environment variables. */
  env?: Record<string, string>;
  /**
   * Run it in a process group (and session) of its own, as a shell runs a
   * foreground job, so {@linkcode LineProcess.signalGroup} reaches it and
   * every process it starts, as a terminal's Ctrl-C does.
   */
  group?: boolean;
}

/**
 * A spawned process whose output is read line by line as it comes.
 * Dispose of it to kill it (if still running) and release its pipes.
 */
export class LineProcess implements AsyncDisposable {
  readonly child: Deno.ChildProcess;
  /** Lines of stdout so far. */
  readonly stdout: string[] = [];
  /** Lines of stderr so far. */
  readonly stderr: string[] = [];
  #reading: Promise<void>;
  #waiters = new Set<() => void>();
  #group: boolean;

  /** Spawns `deno ARGS…` (or `options.command ARGS…`) in the project root. */
  constructor(args: string[], options: LineProcessOptions = {}) {
    this.child = new Deno.Command(options.command ?? Deno.execPath(), {
      args,
      cwd: options.cwd ?? ROOT,
      env: cleanEnv(options.env),
      clearEnv: true, // else the parent's variables come back
      stdout: "piped",
      stderr: "piped",
      stdin: "null",
      detached: options.group ?? false,
    }).spawn();
    this.#group = options.group ?? false;
    this.#reading = Promise.all([
      this.#collect(this.child.stdout, this.stdout),
      this.#collect(this.child.stderr, this.stderr),
    ]).then(() => {});
  }

  async #collect(stream: ReadableStream<Uint8Array>, into: string[]) {
    let partial = "";
    for await (const text of stream.pipeThrough(new TextDecoderStream())) {
      const parts = (partial + text).split("\n");
      partial = parts.pop()!;
      into.push(...parts);
      for (const wake of this.#waiters) wake();
    }
    if (partial) into.push(partial);
    for (const wake of this.#waiters) wake();
  }

  /** Resolves with the first line of `which` matching `pattern`. */
  async waitForLine(
    which: "stdout" | "stderr",
    pattern: RegExp,
    timeoutMs = 20_000,
  ): Promise<RegExpMatchArray> {
    const lines = this[which];
    const find = () => {
      for (const line of lines) {
        const match = line.match(pattern);
        if (match) return match;
      }
    };
    let timer: ReturnType<typeof setTimeout> | undefined;
    let wake: (() => void) | undefined;
    try {
      return await new Promise((resolve, reject) => {
        timer = setTimeout(() => {
          reject(
            new Error(
              `No ${which} line matched ${pattern} in ${timeoutMs} ms:\n${
                lines.join("\n")
              }`,
            ),
          );
        }, timeoutMs);
        wake = () => {
          const match = find();
          if (match) resolve(match);
        };
        this.#waiters.add(wake);
        wake();
      });
    } finally {
      clearTimeout(timer);
      if (wake) this.#waiters.delete(wake);
    }
  }

  /**
   * Sends `signal` to the whole process group (a process started with
   * `group: true`), as a terminal or `kill -- -PGID` does.
   */
  signalGroup(signal: Deno.Signal): void {
    if (!this.#group) throw new Error("Not started with group: true");
    Deno.kill(-this.child.pid, signal);
  }

  #kill(): void {
    try {
      if (this.#group) Deno.kill(-this.child.pid, "SIGKILL");
      else this.child.kill("SIGKILL");
    } catch {
      // Already exited.
    }
  }

  /** Waits for the exit (bounded); kills with SIGKILL past `timeoutMs`. */
  async exit(timeoutMs = 20_000): Promise<Deno.CommandStatus> {
    const timer = setTimeout(() => this.#kill(), timeoutMs);
    try {
      const status = await this.child.status;
      await this.#reading;
      return status;
    } finally {
      clearTimeout(timer);
    }
  }

  /** Kills the process if it still runs, and waits for it and its pipes. */
  async [Symbol.asyncDispose](): Promise<void> {
    this.#kill();
    await this.exit();
  }
}

/**
 * `deno task TASK ARGS…` as a person types it, in a process group of its own
 * (`deno task` and the `deno run` it starts share it, as in a terminal).
 */
export function spawnTask(
  task: "serve" | "client",
  args: string[],
  env?: Record<string, string>,
): LineProcess {
  return new LineProcess(["task", task, ...args], { env, group: true });
}

/**
 * Starts `main.ts serve` on 127.0.0.1 and an ephemeral port; with
 * `viaTask`, through `deno task serve` in a process group of its own.
 */
export async function spawnServer(
  args: string[] = [],
  env?: Record<string, string>,
  viaTask = false,
): Promise<{ process: LineProcess; port: number; target: string }> {
  const serveArgs = ["--host", "127.0.0.1", "--port", "0", ...args];
  const process = viaTask
    ? spawnTask("serve", serveArgs, env)
    : new LineProcess([...taskArgs("serve"), ...serveArgs], { env });
  try {
    const [, port] = await process.waitForLine(
      "stderr",
      /Starting server on 127\.0\.0\.1:(\d+)/,
    );
    return { process, port: Number(port), target: `127.0.0.1:${port}` };
  } catch (error) {
    await process[Symbol.asyncDispose](); // a server that did not start is not left running
    throw error;
  }
}

/** Where `prlimit` is, if installed (to start a server under a descriptor limit). */
export const PRLIMIT: string | undefined = ["/usr/bin/prlimit", "/bin/prlimit"]
  .find((path) => {
    try {
      return Deno.statSync(path).isFile;
    } catch {
      return false;
    }
  });

/**
 * `deno task serve` on 127.0.0.1 and an ephemeral port under at most
 * `maxOpenFiles` descriptors (soft and hard: `prlimit`, as `ulimit -n` in
 * the shell before it), in a process group of its own.
 */
export async function spawnLimitedServer(
  maxOpenFiles: number,
  args: string[] = [],
): Promise<{ process: LineProcess; port: number; target: string }> {
  if (!PRLIMIT) {
    throw new Error("Cannot limit descriptors: prlimit is not installed");
  }
  const process = new LineProcess([
    `--nofile=${maxOpenFiles}:${maxOpenFiles}`,
    "--",
    Deno.execPath(),
    "task",
    "serve",
    "--host",
    "127.0.0.1",
    "--port",
    "0",
    ...args,
  ], { command: PRLIMIT, group: true });
  const [, port] = await process.waitForLine(
    "stderr",
    /Starting server on 127\.0\.0\.1:(\d+)/,
  );
  return { process, port: Number(port), target: `127.0.0.1:${port}` };
}

/**
 * Starts `bench/pool.ts` holding `subscribers` clock subscriptions
 * (`SayHelloStreamReply`; with `subscribe`, `Subscribe` calls to its topic)
 * over `connections` connections to `target`; resolves once all are live.
 */
export async function spawnSubscriberPool(
  target: string,
  subscribers: number,
  connections: number,
  subscribe?: { topic: string },
): Promise<LineProcess> {
  const pool = new LineProcess(
    scriptArgs(
      "client",
      "bench/pool.ts",
      target,
      String(subscribers),
      String(connections),
      ...(subscribe ? ["Subscribe", subscribe.topic] : []),
    ),
  );
  await pool.waitForLine("stdout", /^ready$/, 60_000);
  return pool;
}

/** Options of {@linkcode runTask}. */
export interface RunTaskOptions {
  /** Where the task is started (`deno task` runs it in the project root and passes this as `INIT_CWD`). Default: the project root. */
  cwd?: string;
  /** Extra environment variables. */
  env?: Record<string, string>;
  /** Kill it past this (ms). Default 20 s. */
  timeoutMs?: number;
}

/**
 * Runs `deno task TASK ARGS…` itself (not its command line), as a person
 * types it, to the end: for what only `deno task` does (`INIT_CWD`).
 */
export async function runTask(
  task: "serve" | "client",
  args: string[],
  options: RunTaskOptions = {},
): Promise<ClientResult> {
  const child = new Deno.Command(Deno.execPath(), {
    args: [
      "task",
      "--quiet",
      "--config",
      join(ROOT, "deno.json"),
      task,
      ...args,
    ],
    cwd: options.cwd ?? ROOT,
    env: cleanEnv(options.env),
    clearEnv: true, // else the parent's variables come back
    stdout: "piped",
    stderr: "piped",
    stdin: "null",
  }).spawn();
  return await finished(child, options.timeoutMs ?? 20_000);
}
