// A reader that goes away (`npm run rehearse | head`) closes our stdout or
// stderr: every later write fails with EPIPE, emitted as an 'error' event.
// Unhandled, that is an uncaught exception, which the Pulumi runtime loaded by
// the rehearsal logs — to the same closed pipe — again and again: seen spinning
// a core and growing to 10 GB for an hour, the sandbox half stopped. With these
// listeners the lost output is dropped and the run goes on to its end, stopping
// everything it started, and exits with its usual code.

const LOST_OUTPUT = new Set(["EPIPE", "ERR_STREAM_DESTROYED", "ERR_STREAM_WRITE_AFTER_END"]);

/** Call first thing in a tool's main module. Errors other than a lost reader still surface. */
export function keepRunningWhenOutputCloses(streams: NodeJS.WriteStream[] = [process.stdout, process.stderr]): void {
    for (const stream of streams) {
        stream.on("error", (err: NodeJS.ErrnoException) => {
            if (!LOST_OUTPUT.has(err.code ?? "")) throw err;
        });
    }
}
