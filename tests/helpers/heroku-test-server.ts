// The sandbox's Heroku server (the one server that follows the contract),
// started alone on 127.0.0.1 with a context of its own, for the unit and
// engine tests of the Heroku consumer: no World, no moto.
import { EventEmitter } from "node:events";
import { FaultBoard, FaultSpec } from "../../sandbox/services/faults";
import { HerokuRequestRecord, HerokuServer } from "../../sandbox/services/heroku-server";
import { KeyRegistry } from "../../sandbox/services/key-registry";
import { ServiceContext } from "../../sandbox/services/service";
import { Timeline } from "../../sandbox/services/timeline";

export interface TestHeroku {
    server: HerokuServer;
    ctx: ServiceContext;
    url: string;
    apiKey: string;
    /** Every request received since the last `reset()`, headers and body as sent. */
    requests: HerokuRequestRecord[];
    /** Requests of one method (and app) since the last `reset()`. */
    count(method: string, app?: string): number;
    fault(spec: Omit<FaultSpec, "service">): void;
    /** Forgets recorded requests and clears faults. */
    reset(): void;
    stop(): Promise<void>;
}

export async function startTestHeroku(opts: { apiKey: string; apps: string[] }): Promise<TestHeroku> {
    const ctx: ServiceContext = {
        timeline: new Timeline(),
        faults: new FaultBoard(),
        keys: new KeyRegistry(),
        events: new EventEmitter(),
        log: () => undefined,
    };
    const requests: HerokuRequestRecord[] = [];
    const server = new HerokuServer(ctx, { apiKey: opts.apiKey, apps: opts.apps }, (r) => requests.push(r));
    await server.start();
    return {
        server,
        ctx,
        url: server.url,
        apiKey: opts.apiKey,
        requests,
        count: (method, app) =>
            requests.filter((r) => r.method === method && (app === undefined || r.path === `/apps/${app}/config-vars`)).length,
        fault: (spec) => ctx.faults.add({ service: "heroku", ...spec }),
        reset: () => {
            requests.length = 0;
            ctx.faults.clear();
        },
        stop: () => server.stop(),
    };
}

/** Runs `fn` with console output captured; returns everything printed (to scan for leaks). */
export async function capturingConsole<T>(fn: () => Promise<T>): Promise<{ result?: T; error?: unknown; printed: string }> {
    const printed: string[] = [];
    const methods = ["log", "info", "warn", "error", "debug"] as const;
    const saved = methods.map((m) => console[m]);
    const stdoutWrite = process.stdout.write;
    const stderrWrite = process.stderr.write;
    for (const m of methods) console[m] = (...args: unknown[]) => void printed.push(args.map(String).join(" "));
    const capture = (chunk: unknown) => {
        printed.push(String(chunk));
        return true;
    };
    process.stdout.write = capture as typeof process.stdout.write;
    process.stderr.write = capture as typeof process.stderr.write;
    try {
        return { result: await fn(), printed: printed.join("\n") };
    } catch (error) {
        return { error, printed: printed.join("\n") };
    } finally {
        methods.forEach((m, i) => (console[m] = saved[i] as never));
        process.stdout.write = stdoutWrite;
        process.stderr.write = stderrWrite;
    }
}
