/**
 * The bench's grpc-go reference server (`bench/go_tick_server/main.go`):
 * built at bench time, offline, in GOPATH mode, from Debian's `golang-go`,
 * `golang-google-grpc-dev`, `golang-goprotobuf-dev` (its `protoc-gen-go`,
 * 1.3, generates the service too with `plugins=grpc`) and
 * `protobuf-compiler`, into a temporary directory that
 * {@linkcode GoServerBuild} removes. Optional like h2load: where any of them
 * is missing, {@linkcode buildGoServer} says which, and the bench skips the
 * grpc-go rows with that note.
 *
 * @module
 */

import { join } from "node:path";
import { LineProcess, ROOT } from "../testing/process.ts";

/** Debian's GOPATH tree: grpc-go and golang/protobuf sources. */
const GOCODE = "/usr/share/gocode";

/** The built server: spawn it with {@linkcode GoServerBuild.spawn}; dispose to remove it. */
export interface GoServerBuild extends AsyncDisposable {
  /** `go version`'s answer, e.g. `go1.19.8`, and grpc-go's version. */
  readonly version: string;
  /**
   * Starts the server on a free loopback port, ticking every `intervalMs`;
   * resolves once it listens. Dispose of the process to kill it.
   */
  spawn(intervalMs: number): Promise<{ process: LineProcess; port: number }>;
}

/** What is missing to build the grpc-go server here, or undefined when nothing is. */
export function goServerMissing(): string | undefined {
  const needs: [string, string][] = [
    ["/usr/bin/go", "golang-go"],
    ["/usr/bin/protoc", "protobuf-compiler"],
    ["/usr/bin/protoc-gen-go", "golang-goprotobuf-dev"],
    [
      `${GOCODE}/src/google.golang.org/grpc/server.go`,
      "golang-google-grpc-dev",
    ],
  ];
  const missing = needs.filter(([path]) => {
    try {
      return !Deno.statSync(path).isFile;
    } catch {
      return true;
    }
  }).map(([, pkg]) => pkg);
  return missing.length
    ? `cannot build the grpc-go server: apt-get install ${missing.join(" ")}`
    : undefined;
}

/** Runs `command args` with `env`; its stdout, or an error naming it with its stderr. */
async function run(
  command: string,
  args: string[],
  env: Record<string, string> = {},
): Promise<string> {
  const out = await new Deno.Command(command, {
    args,
    env,
    cwd: ROOT,
    stdin: "null",
  }).output();
  const text = (bytes: Uint8Array) => new TextDecoder().decode(bytes).trim();
  if (!out.success) {
    throw new Error(
      `Cannot build the grpc-go server: ${command} ${
        args.join(" ")
      } exited with code ${out.code}: ${text(out.stderr)}`,
    );
  }
  return text(out.stdout);
}

/**
 * Generates the proto's Go code and builds the server in a new temporary
 * directory (about 10 s the first time, then from Go's build cache).
 * Throws when a tool is missing ({@linkcode goServerMissing}) or fails.
 */
export async function buildGoServer(): Promise<GoServerBuild> {
  const missing = goServerMissing();
  if (missing) throw new Error(missing);
  const dir = await Deno.makeTempDir({ prefix: "greeter-go-server-" });
  try {
    const generated = join(dir, "src/gotick/helloworld");
    await Deno.mkdir(generated, { recursive: true });
    await Deno.copyFile(
      join(ROOT, "bench/go_tick_server/main.go"),
      join(dir, "src/gotick/main.go"),
    );
    await run("protoc", [
      "-I",
      join(ROOT, "protos"),
      `--go_out=plugins=grpc,Mhelloworld.proto=gotick/helloworld:${generated}`,
      join(ROOT, "protos/helloworld.proto"),
    ]);
    const binary = join(dir, "go_tick_server");
    // GOPATH mode, offline: Debian's sources, no module download.
    const goEnv = {
      GOPATH: `${dir}:${GOCODE}`,
      GO111MODULE: "off",
      GOFLAGS: "",
      GOPROXY: "off",
      GOCACHE: Deno.env.get("GOCACHE") ?? join(dir, "cache"),
    };
    await run("go", ["build", "-o", binary, "gotick"], goEnv);
    const goVersion = (await run("go", ["version"], goEnv)).split(" ")[2];
    const grpcVersion = (await Deno.readTextFile(
      `${GOCODE}/src/google.golang.org/grpc/version.go`,
    )).match(/Version = "([^"]+)"/)?.[1] ?? "unknown";
    return {
      version: `${goVersion}, grpc-go ${grpcVersion}`,
      async spawn(intervalMs: number) {
        const process = new LineProcess(
          ["-interval", String(intervalMs)],
          { command: binary },
        );
        try {
          const [, port] = await process.waitForLine(
            "stderr",
            /listening on (\d+)/,
          );
          return { process, port: Number(port) };
        } catch (error) {
          await process[Symbol.asyncDispose]();
          throw error;
        }
      },
      async [Symbol.asyncDispose]() {
        await Deno.remove(dir, { recursive: true });
      },
    };
  } catch (error) {
    await Deno.remove(dir, { recursive: true });
    throw error;
  }
}
