// The sweep's own logic (sandbox/sweep.ts): which calls of a bump are points,
// how each is killed after or failed once, and that the scenario it writes for
// a point is a valid scenario file that reruns that point alone.
import * as assert from "node:assert/strict";
import { stringify, parse } from "yaml";
import type { EventEntry } from "../../sandbox/services/timeline";
import { parseScenario } from "../../sandbox/scenario";
import { FaultBoard } from "../../sandbox/services/faults";
import { isSweepPoint, pointNamed, pointScenario, sweepPoints } from "../../sandbox/sweep";
import { GithubState } from "../../sandbox/services/github-state";
import { KeyRegistry } from "../../sandbox/services/key-registry";
import { Timeline } from "../../sandbox/services/timeline";

const at = (n: number) => 1_000 + n;
const bump: EventEntry[] = [
    { at: at(0), service: "iam", event: "ListAccessKeys", status: 200 },
    { at: at(1), service: "iam", event: "CreateAccessKey", status: 200, write: true },
    { at: at(2), service: "sts", event: "GetCallerIdentity", status: 403 },
    { at: at(3), service: "sts", event: "GetCallerIdentity", status: 200 },
    { at: at(4), service: "github", event: "GET /repos/raxx-app/raxx-api/actions/secrets/public-key", status: 200 },
    { at: at(5), service: "github", event: "PUT /repos/raxx-app/raxx-api/actions/secrets/AWS_ACCESS_KEY_ID", status: 204, write: true },
    { at: at(6), service: "hosts", event: "CONNECT vault-host.raxx.app", status: 0 },
    { at: at(7), service: "hosts", event: "restart raxx-vault", status: 0, write: true },
    { at: at(8), service: "probe", event: "GET /probes/s3-backup-dry-run", status: 200 },
    { at: at(9), service: "infisical", event: "GET /api/v4/secrets", status: 401 },
    { at: at(10), service: "iam", event: "UpdateAccessKey", status: 200, write: true },
    { at: at(11), service: "iam", event: "CreateAccessKey", status: 200, write: true, origin: "world" },
];

describe("npm run sweep: the points of a bump", () => {
    it("every write, every STS call and Infisical's secrets listing; not reads that only gather, probes or the world's own calls", () => {
        assert.deepEqual(
            bump.filter(isSweepPoint).map((e) => `${e.service} ${e.event}`),
            [
                "iam CreateAccessKey",
                "sts GetCallerIdentity",
                "sts GetCallerIdentity",
                "github PUT /repos/raxx-app/raxx-api/actions/secrets/AWS_ACCESS_KEY_ID",
                "hosts restart raxx-vault",
                "infisical GET /api/v4/secrets",
                "iam UpdateAccessKey",
            ],
        );
    });

    it("a call made twice is two points, killed after and failed at its own occurrence; a host's point cuts that host's connection", () => {
        const points = sweepPoints(bump);
        const sts = points.filter((p) => p.event === "sts GetCallerIdentity");
        assert.deepEqual(
            sts.map((p) => [p.call, p.nth, p.fault]),
            [
                ["sts GetCallerIdentity", 1, { service: "sts", path: "^GetCallerIdentity$", status: 503, times: 1 }],
                ["sts GetCallerIdentity (#2)", 2, { service: "sts", path: "^GetCallerIdentity$", status: 503, times: 1, skip: 1 }],
            ],
        );
        assert.deepEqual(points.find((p) => p.event.startsWith("github"))!.fault, {
            service: "github",
            method: "PUT",
            path: "^/repos/raxx-app/raxx-api/actions/secrets/AWS_ACCESS_KEY_ID$",
            status: 503,
            times: 1,
        });
        assert.deepEqual(points.find((p) => p.event === "hosts restart raxx-vault")!.fault, {
            service: "hosts",
            path: "^vault-host\\.raxx\\.app$",
            status: 503,
            times: 1,
        });
    });

    it("an id minted during the run (a token's) is matched by * in the next rehearsal, in the kill and in the fault", () => {
        const [revoke] = sweepPoints([
            {
                at: 1,
                service: "infisical",
                event: "POST /api/v1/auth/token-auth/tokens/3b8ad3ef-cc75-4690-b79e-29be729b0b08/revoke",
                status: 200,
                write: true,
            },
        ]);
        assert.equal(revoke.event, "infisical POST /api/v1/auth/token-auth/tokens/*/revoke");
        const path = new RegExp(revoke.fault.path!);
        assert.ok(path.test("/api/v1/auth/token-auth/tokens/0f0e1d2c-0000-4000-8000-000000000001/revoke"));
        assert.ok(!path.test("/api/v1/auth/token-auth/tokens/a/b/revoke"), "one path segment only");
    });

    it("a fault with skip lets that many matching requests through, then hits the next one once", () => {
        const board = new FaultBoard();
        board.add({ service: "sts", path: /^GetCallerIdentity$/, status: 503, times: 1, skip: 1 });
        const req = { service: "sts", method: "POST", targets: ["/", "GetCallerIdentity"] };
        assert.deepEqual([board.take(req)?.status, board.take(req)?.status, board.take(req)?.status], [undefined, 503, undefined]);
    });

    it("writes each point as a scenario file that parses and reruns it alone: kill → recover → up, or fail once → up, then a refreshed preview", () => {
        const point = pointNamed("iam", "UpdateAccessKey");
        const kill = parseScenario(parse(stringify(pointScenario("aws-access-key", point, "kill"))));
        assert.equal(kill.name, "sweep-kill-iam-updateaccesskey");
        assert.deepEqual(kill.steps, [
            { up: {} },
            { set: { "credentials.vault-operator.epoch": 2 } },
            { kill: { after: "iam UpdateAccessKey" } },
            { up: {} },
            { recover: {} },
            { up: {} },
            { preview: { expect: "no-changes", refresh: true } },
        ]);
        const fault = parseScenario(
            parse(stringify(pointScenario("infisical-token", pointNamed("infisical", "GET /api/v4/secrets", 2), "fault"))),
        );
        assert.deepEqual(fault.steps.slice(1, 5), [
            { set: { "credentials.infisical-service-token.epoch": 2 } },
            { fault: { service: "infisical", method: "GET", path: "^/api/v4/secrets$", status: 503, times: 1, skip: 1 } },
            { up: { expect: "any" } },
            { fault: { service: "infisical", clear: true } },
        ]);
    });
});

describe("the sandbox's GitHub: a repository's id, part of the environment-secret paths a sweep names its points by", () => {
    async function idsWhenFirstReached(order: string[]): Promise<Record<string, number>> {
        const state = new GithubState("raxx-app", new KeyRegistry(), new Timeline());
        const ids: Record<string, number> = {};
        for (const name of order) ids[name] = (await state.repo(name)).id;
        return ids;
    }

    it("depends on the name alone, not on which repository the engine's parallel steps reached first", async () => {
        const one = await idsWhenFirstReached(["raxx-api", "raxx-console", "raxx-worker"]);
        const other = await idsWhenFirstReached(["raxx-worker", "raxx-console", "raxx-api"]);
        assert.deepEqual(one, other);
        assert.equal(new Set(Object.values(one)).size, 3, "distinct ids");
        const concurrent = new GithubState("raxx-app", new KeyRegistry(), new Timeline());
        const [a, b] = await Promise.all([concurrent.repo("raxx-console"), concurrent.repo("raxx-console")]);
        assert.equal(a, b, "two first requests at once get the same repository");
        assert.equal(a.id, one["raxx-console"]);
    });
});
