/**
 * `deno task serve` as a shell starts it: in a process group of its own
 * (`setsid`), so that a test signals the whole group as a terminal or
 * `kill -HUP -PGID` does (`deno task` and the server it runs both get it).
 *
 * @module
 */

import { LineProcess } from "./process.ts";

/** A `deno task` process group; dispose of it to kill the whole group. */
export class TaskGroup implements AsyncDisposable {
  /** The group's leader (`deno task`), whose pid is the group id. */
  readonly process: LineProcess;

  /** Starts `deno task TASK ARGS…` in a new session and process group. */
  constructor(task: "serve" | "client", args: string[]) {
    this.process = new LineProcess(
      [Deno.execPath(), "task", "--quiet", task, ...args],
      { command: "setsid" },
    );
  }

  /** Sends `signal` to every process of the group. */
  signal(signal: Deno.Signal): void {
    Deno.kill(-this.process.child.pid, signal);
  }

  /** Kills the whole group, then waits for the leader and its pipes. */
  async [Symbol.asyncDispose](): Promise<void> {
    try {
      this.signal("SIGKILL");
    } catch {
      // Already gone.
    }
    await this.process.exit();
  }
}

/**
 * Starts `deno task serve` on 127.0.0.1 and an ephemeral port in its own
 * process group; resolves once it listens.
 */
export async function spawnServeGroup(
  args: string[] = [],
): Promise<{ group: TaskGroup; target: string }> {
  const group = new TaskGroup("serve", [
    "--host",
    "127.0.0.1",
    "--port",
    "0",
    ...args,
  ]);
  try {
    const [, port] = await group.process.waitForLine(
      "stderr",
      /Starting server on 127\.0\.0\.1:(\d+)/,
    );
    return { group, target: `127.0.0.1:${port}` };
  } catch (error) {
    await group[Symbol.asyncDispose]();
    throw error;
  }
}
