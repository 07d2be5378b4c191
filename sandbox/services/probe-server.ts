// A stand-in for a consumer's AWS-using workload (SOP steps 6 and 7's
// `heroku run ... s3_backup_dry_run`): a probe command in the sandbox calls
// GET /probes/<name> here and exits non-zero unless the answer is 2xx. Fault
// switches apply (service "probe"), so a rehearsal can make a probe fail and
// show that the update stops there. Each call is on the timeline's event log
// ("GET /probes/<name>"), which is how tests prove the gates' order.
import * as http from "node:http";
import { describeFault } from "./faults";
import { announce, applyFault, LoopbackServer, SandboxService, ServiceContext } from "./service";

/** One probe call as seen here. */
export interface ProbeCall {
    at: number;
    name: string;
    /** RAXX_PROBE_PHASE of the calling command, when it sent one. */
    phase?: string;
    /** RAXX_ACTIVE_KEY_ID of the calling command, when it sent one (a key id, never a secret). */
    keyId?: string;
    status: number;
}

export class ProbeServer implements SandboxService {
    readonly services = ["probe"] as const;
    private readonly server: LoopbackServer;
    private readonly seen: ProbeCall[] = [];

    constructor(private readonly ctx: ServiceContext) {
        this.server = new LoopbackServer((req, res) => this.handle(req, res), ctx.log);
    }

    get url(): string {
        return this.server.url;
    }

    start(): Promise<void> {
        return this.server.listen();
    }

    stop(): Promise<void> {
        return this.server.close();
    }

    /** Calls received, oldest first (copies). */
    calls(): ProbeCall[] {
        return this.seen.map((c) => ({ ...c }));
    }

    /**
     * A shell command for a probe's `command`: node (this process's binary)
     * fetches /probes/<name> with the phase and key id from the environment
     * the Probes component sets, and exits 0 on 2xx, 1 otherwise, 2 when
     * unreachable.
     */
    command(name: string): string {
        const script =
            "const u=new URL(process.argv[1]);" +
            "if(process.env.RAXX_PROBE_PHASE)u.searchParams.set('phase',process.env.RAXX_PROBE_PHASE);" +
            "if(process.env.RAXX_ACTIVE_KEY_ID)u.searchParams.set('keyId',process.env.RAXX_ACTIVE_KEY_ID);" +
            "fetch(u,{signal:AbortSignal.timeout(10000)}).then(r=>{console.log('probe answered '+r.status);process.exit(r.ok?0:1)},e=>{console.error('probe unreachable: '+e.message);process.exit(2)})";
        return `${shellQuote(process.execPath)} -e ${shellQuote(script)} ${shellQuote(`${this.url}/probes/${encodeURIComponent(name)}`)}`;
    }

    private async handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
        req.resume();
        const method = (req.method ?? "GET").toUpperCase();
        const url = new URL(req.url ?? "/", "http://probe.local");
        const path = url.pathname.replace(/\/+$/, "") || "/";
        const event = `${method} ${path}`;
        const m = /^\/probes\/([^/]+)$/.exec(path);
        const call = (status: number): void => {
            if (!m) return;
            const entry: ProbeCall = { at: this.ctx.timeline.now(), name: decodeURIComponent(m[1]), status };
            const phase = url.searchParams.get("phase");
            const keyId = url.searchParams.get("keyId");
            if (phase) entry.phase = phase;
            if (keyId) entry.keyId = keyId;
            this.seen.push(entry);
        };

        const fault = this.ctx.faults.take({ service: "probe", method, targets: [path] });
        if (fault) {
            let answered = 0;
            const outcome = await applyFault(fault, res, (status) => {
                answered = status;
                res.writeHead(status, { "content-type": "text/plain" });
                res.end(fault.message ?? `sandbox fault: ${status}\n`);
            });
            if (outcome === "served") {
                call(answered);
                announce(this.ctx, { service: "probe", event, status: answered, fault: describeFault(fault) });
                return;
            }
        }

        // A health endpoint (the Infisical SOP's /health/dependencies): JSON with ok: true.
        if (/^\/health\/[^/]+$/.test(path) && method === "GET") {
            res.writeHead(200, { "content-type": "application/json" });
            res.end(JSON.stringify({ ok: true }));
            announce(this.ctx, { service: "probe", event, status: 200 });
            return;
        }
        const status = m && method === "GET" ? 200 : 404;
        res.writeHead(status, { "content-type": "text/plain" });
        res.end(status === 200 ? "ok\n" : "not found\n");
        call(status);
        announce(this.ctx, { service: "probe", event, status });
    }
}

function shellQuote(s: string): string {
    return `'${s.replace(/'/g, `'\\''`)}'`;
}
