// How a tool runs as `npm run <tool>` (and not when a test imports it): its
// `run` gives the exit code; a throw prints its message — never a stack, which
// may quote what a request carried — and exits with the tool's failure code.
// `exit: "now"` ends the process at once (tools whose clients keep sockets
// open); otherwise it ends when the event loop is idle (output flushed).
export function runAsMain(
    caller: NodeJS.Module,
    run: (argv: string[]) => Promise<number>,
    { failureCode, prefix, exit = "when-idle" }: { failureCode: number; prefix?: string; exit?: "now" | "when-idle" },
): void {
    if (require.main !== caller) return;
    const end = (code: number) => (exit === "now" ? process.exit(code) : void (process.exitCode = code));
    run(process.argv.slice(2)).then(end, (e: unknown) => {
        const message = e instanceof Error ? e.message : String(e);
        console.error(prefix ? `${prefix}: ${message}` : message);
        end(failureCode);
    });
}
