/**
 * Imported before `playwright-core`, for its side effect: at import, the
 * `is-wsl` package playwright-core bundles probes
 * `/proc/sys/fs/binfmt_misc/WSLInterop`, which Deno allows only with
 * `--allow-all`; `is-wsl` skips the probe when this variable is set.
 *
 * @module
 */

Deno.env.set("__IS_WSL_TEST__", "1");
