// Finding and killing the Pulumi CLI the Automation API started, with every
// plugin it launched: a `kill` step must not leave orphans behind (CI runs on
// the same machine next).
import * as fs from "node:fs";

interface Proc {
    pid: number;
    ppid: number;
    comm: string;
}

function processes(): Proc[] {
    const list: Proc[] = [];
    for (const entry of fs.readdirSync("/proc")) {
        if (!/^\d+$/.test(entry)) continue;
        try {
            const stat = fs.readFileSync(`/proc/${entry}/stat`, "utf8");
            // comm is in parentheses and may contain spaces: split after the last ")".
            const close = stat.lastIndexOf(")");
            const comm = stat.slice(stat.indexOf("(") + 1, close);
            const ppid = Number(stat.slice(close + 2).split(" ")[1]);
            list.push({ pid: Number(entry), ppid, comm });
        } catch {
            // the process ended while we looked
        }
    }
    return list;
}

export function childProcessesNamed(parent: number, comm: string): number[] {
    return processes()
        .filter((p) => p.ppid === parent && p.comm === comm)
        .map((p) => p.pid);
}

export function descendants(root: number): number[] {
    const all = processes();
    const found: number[] = [];
    const queue = [root];
    while (queue.length) {
        const pid = queue.shift()!;
        for (const p of all) {
            if (p.ppid === pid) {
                found.push(p.pid);
                queue.push(p.pid);
            }
        }
    }
    return found;
}

/** SIGKILL a process and all of its descendants (collected first: orphans get re-parented). */
export function killProcessTree(pid: number): void {
    for (const p of [pid, ...descendants(pid)]) {
        try {
            process.kill(p, "SIGKILL");
        } catch {
            // already gone
        }
    }
}
