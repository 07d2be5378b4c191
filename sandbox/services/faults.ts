// Fault switches shared by every sandbox service: a rehearsal flips one on
// ("the next two PUTs to GitHub answer 502", "STS hangs") and the service that
// receives a matching request answers the fault instead of doing the work.

export interface FaultSpec {
    /** "iam", "sts", "github" (later "infisical", "heroku"). */
    service: string;
    /** HTTP method, case-insensitive; any when unset. */
    method?: string;
    /**
     * Tested against the URL path (without query, with and without a GitHub
     * `/api/v3` prefix) and, for AWS, against the Action name. A string matches
     * when it is contained in one of them; a RegExp when it tests true.
     */
    path?: RegExp | string;
    /** Answer this status in the vendor's error shape. */
    status?: number;
    /** Vendor error code (AWS `<Code>`); a plausible one is chosen from the status when unset. */
    code?: string;
    message?: string;
    /** Wait this long first (then answer `status`, or serve normally when no status). */
    delayMs?: number;
    /** Never answer: the client must give up, or the world stops. */
    hang?: true;
    /** Match this many requests, then switch off. Unset: until cleared. */
    times?: number;
    /** Let this many matching requests through first. */
    skip?: number;
}

export interface FaultRequest {
    service: string;
    method: string;
    /** Everything `path` may be tested against (paths, Action name). */
    targets: string[];
}

/** A short label for the event log, e.g. "status 503" or "hang". */
export function describeFault(f: FaultSpec): string {
    const parts: string[] = [];
    if (f.delayMs) parts.push(`delay ${f.delayMs}ms`);
    if (f.hang) parts.push("hang");
    if (f.status) parts.push(`status ${f.status}`);
    return parts.join(", ") || "noop";
}

export class FaultBoard {
    private readonly faults: FaultSpec[] = [];

    add(spec: FaultSpec): void {
        if (spec.times !== undefined && !(spec.times > 0)) throw new Error(`fault times must be positive, got ${spec.times}`);
        if (!spec.hang && spec.status === undefined && spec.delayMs === undefined) {
            throw new Error("a fault needs status, delayMs or hang");
        }
        this.faults.push({ ...spec });
    }

    clear(service?: string): void {
        for (let i = this.faults.length - 1; i >= 0; i--) {
            if (service === undefined || this.faults[i].service === service) this.faults.splice(i, 1);
        }
    }

    /** The first fault matching the request, consuming one of its `times`. */
    take(req: FaultRequest): FaultSpec | undefined {
        const i = this.faults.findIndex((f) => matches(f, req));
        if (i < 0) return undefined;
        const f = this.faults[i];
        if (f.skip !== undefined && f.skip > 0) {
            f.skip -= 1;
            return undefined;
        }
        if (f.times !== undefined) {
            f.times -= 1;
            if (f.times <= 0) this.faults.splice(i, 1);
        }
        return f;
    }
}

function matches(f: FaultSpec, req: FaultRequest): boolean {
    if (f.service !== req.service) return false;
    if (f.method && f.method.toUpperCase() !== req.method.toUpperCase()) return false;
    if (f.path === undefined) return true;
    const p = f.path;
    return req.targets.some((t) => (typeof p === "string" ? t.includes(p) : testRegExp(p, t)));
}

// A global or sticky RegExp keeps state between tests; reset it so a fault
// matches the same way every time.
function testRegExp(re: RegExp, s: string): boolean {
    re.lastIndex = 0;
    return re.test(s);
}

export function sleep(ms: number): Promise<void> {
    return new Promise((r) => setTimeout(r, ms));
}
