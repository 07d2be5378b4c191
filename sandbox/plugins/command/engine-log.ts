// Streams a command's output to the engine as diagnostics on its resource, the
// way pulumi-command's util.LogOutput does (ctx.Log at Info, line by line), so
// `pulumi up` shows what a command printed. Lines go through the engine's Log
// RPC at the address the engine started the plugin with.
import * as grpc from "@grpc/grpc-js";
import { EngineClient } from "@pulumi/pulumi/proto/engine_grpc_pb";
import { LogRequest, LogSeverity } from "@pulumi/pulumi/proto/engine_pb";

let client: EngineClient | undefined;

/** The engine's address, as @pulumi/pulumi/provider's parseArgs reads it from the plugin's arguments. */
export function engineAddress(args: string[]): string | undefined {
    const clean: string[] = [];
    for (let i = 0; i < args.length; i++) {
        const v = args[i];
        if (v === "--logtostderr" || v.startsWith("-v=")) continue;
        if (v === "--tracing") {
            i += 1;
            continue;
        }
        clean.push(v);
    }
    return clean[0];
}

export function connectEngine(address: string | undefined): void {
    if (!address || client) return;
    client = new EngineClient(address, grpc.credentials.createInsecure());
}

/** Lines are sent one after the other, so the engine shows them in the order printed. */
let queue: Promise<void> = Promise.resolve();

/** Sends one line as an Info diagnostic of `urn`; never fails the command (a lost log line is not an error). */
export function logInfo(urn: string, line: string): Promise<void> {
    return logAt(urn, "info", line);
}

/** A diagnostic at the given severity, as pulumi-go-provider's logger sends it. */
export function logAt(urn: string, severity: "info" | "warning" | "error", message: string): Promise<void> {
    const c = client;
    if (!c) return Promise.resolve();
    const req = new LogRequest();
    req.setSeverity(severity === "info" ? LogSeverity.INFO : severity === "warning" ? LogSeverity.WARNING : LogSeverity.ERROR);
    req.setMessage(message);
    req.setUrn(urn);
    queue = queue.then(() => new Promise<void>((resolve) => c.log(req, () => resolve())));
    return queue;
}

/** Splits a stream into lines and hands each complete line to `emit`; `flush` sends what is left. */
export class LineSplitter {
    private partial = "";

    constructor(private readonly emit: (line: string) => void) {}

    push(chunk: string): void {
        const lines = (this.partial + chunk).split("\n");
        this.partial = lines.pop() ?? "";
        for (const line of lines) this.emit(line);
    }

    flush(): void {
        if (this.partial !== "") this.emit(this.partial);
        this.partial = "";
    }
}
