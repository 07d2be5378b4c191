// What every sandbox service shares, so Infisical and Heroku servers plug into
// the World the same way the AWS proxy and the GitHub server do.
import { EventEmitter } from "node:events";
import * as http from "node:http";
import { AddressInfo } from "node:net";
import { FaultBoard, FaultSpec, sleep } from "./faults";
import { KeyRegistry } from "./key-registry";
import { EventEntry, Timeline } from "./timeline";

export type Log = (line: string) => void;

/** Emitted on `World.events` as "event" after each answered request. */
export interface WorldEvent {
    service: string;
    /** "<service> <Action>" for AWS ("iam CreateAccessKey"), "<service> <METHOD> <path>" for REST. */
    name: string;
    status: number;
    at: number;
    origin?: "world";
}

/** Handed to each service at construction: the shared stores of the world. */
export interface ServiceContext {
    timeline: Timeline;
    faults: FaultBoard;
    keys: KeyRegistry;
    events: EventEmitter;
    log: Log;
}

export interface SandboxService {
    /** Fault/timeline service names this server answers for (the AWS proxy answers "iam" and "sts"). */
    readonly services: readonly string[];
    /** Base URL once started. */
    readonly url: string;
    start(): Promise<void>;
    stop(): Promise<void>;
}

/** Records an event on the timeline and announces it to listeners. */
export function announce(ctx: ServiceContext, entry: Omit<EventEntry, "at"> & { at?: number }): void {
    const recorded = ctx.timeline.recordEvent(entry);
    const ev: WorldEvent = {
        service: recorded.service,
        name: `${recorded.service} ${recorded.event}`,
        status: recorded.status,
        at: recorded.at,
    };
    if (recorded.origin) ev.origin = recorded.origin;
    ctx.events.emit("event", ev);
}

export function readBody(req: http.IncomingMessage): Promise<Buffer> {
    return new Promise((resolve, reject) => {
        const chunks: Buffer[] = [];
        req.on("data", (c: Buffer) => chunks.push(c));
        req.on("end", () => resolve(Buffer.concat(chunks)));
        req.on("error", reject);
    });
}

/**
 * A node:http server on a free 127.0.0.1 port that can be stopped even while
 * requests hang (a hang fault keeps the response open on purpose).
 */
export class LoopbackServer {
    private readonly server: http.Server;
    private port = 0;

    constructor(handler: (req: http.IncomingMessage, res: http.ServerResponse) => Promise<void>, log: Log) {
        this.server = http.createServer((req, res) => {
            handler(req, res).catch((err: Error) => {
                log(`sandbox server error on ${req.method} ${req.url}: ${err.message}`);
                if (!res.headersSent) res.writeHead(500, { "content-type": "text/plain" });
                res.end("sandbox server error");
            });
        });
        // A hung request must not hold keep-alive sockets open past stop().
        this.server.keepAliveTimeout = 1000;
    }

    get url(): string {
        return `http://127.0.0.1:${this.port}`;
    }

    listen(): Promise<void> {
        return new Promise((resolve, reject) => {
            this.server.once("error", reject);
            this.server.listen(0, "127.0.0.1", () => {
                this.port = (this.server.address() as AddressInfo).port;
                resolve();
            });
        });
    }

    close(): Promise<void> {
        return new Promise((resolve) => {
            if (!this.server.listening) return resolve();
            this.server.close(() => resolve());
            this.server.closeAllConnections();
        });
    }
}

export type FaultOutcome = "served" | "proceed";

/**
 * Applies a matching fault: waits `delayMs`, then never answers (hang),
 * answers the vendor error (status), or lets the request proceed (delay only).
 */
export async function applyFault(fault: FaultSpec, res: http.ServerResponse, answer: (status: number) => void): Promise<FaultOutcome> {
    if (fault.delayMs) await sleep(fault.delayMs);
    if (fault.hang) {
        // Keep the socket open without answering; closing the server destroys it.
        await new Promise<void>((resolve) => res.on("close", () => resolve()));
        return "served";
    }
    if (fault.status !== undefined) {
        answer(fault.status);
        return "served";
    }
    return "proceed";
}
