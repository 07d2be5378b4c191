// One writer per place, across updates (rotations/place-owners.ts): a place
// that gets a new writer in one update would lose its value to the old
// writer's delete at the end of the update. Renames and moves that say so are
// taken over in place (aliases); any other change of writer is refused.
import * as assert from "node:assert/strict";
import { Run, runProgram } from "../helpers/mock-program";
import { ACCESS_KEY, HOST_KEY, REPO_SECRET, STACK_REFERENCE } from "../helpers/fixtures";
import { GITHUB_ACTIONS_SECRETS_TYPE } from "../../components/consumers/github-secrets";
import { INFISICAL_SECRET_TYPE } from "../../components/consumers/infisical-secret";
import { AWS_ACCESS_KEY_ROTATION_TYPE } from "../../rotations/aws-access-key";

const INFISICAL = INFISICAL_SECRET_TYPE;
const config = {
    "raxx-rotations:infisicalToken": "rotator-token",
    "raxx-rotations:infisical": JSON.stringify({ siteUrl: "https://vault.raxx.app", projectId: "raxx-project-1", environment: "prod" }),
};

/** Two deployers with the same secret names, each writing its own repository. */
function deployer(name: string, repos: Record<string, unknown>[], extra: Record<string, unknown> = {}) {
    return { kind: "aws-access-key", iamUser: `raxx-${name}`, epoch: 1, consumers: { github: repos }, ...extra };
}

async function up(credentials: Record<string, unknown>, lastOutputs?: Record<string, unknown>): Promise<Run> {
    return runProgram({ credentials, lastOutputs, config });
}

describe("one writer per place, across updates", () => {
    let first: Run;
    before(async () => {
        first = await up({
            "deploy-a": deployer("deploy-a", [{ repository: "raxx-api" }]),
            "deploy-b": deployer("deploy-b", [{ repository: "raxx-console" }]),
        });
        assert.equal(first.error, undefined, first.error?.message);
    });

    it("refuses a consumer moved to another credential without movedFrom, naming both and what to do", async () => {
        const run = await up(
            {
                "deploy-a": deployer("deploy-a", []),
                "deploy-b": deployer("deploy-b", [{ repository: "raxx-console" }, { repository: "raxx-api" }]),
            },
            first.outputs,
        );
        assert.match(
            run.error?.message ?? "",
            /credentials\.deploy-b\.consumers\.github\[1\]: writes AWS_ACCESS_KEY_ID to GitHub repository raxx-api, which credentials\.deploy-a wrote until now/,
        );
        assert.match(run.error?.message ?? "", /movedFrom: deploy-a on this consumer/);
        assert.deepEqual(
            run.registrations.map((r) => r.type),
            [STACK_REFERENCE],
            "refused before anything is registered",
        );
    });

    it("with movedFrom, the new writer takes the old one over in place (an alias under the old credential)", async () => {
        const run = await up(
            {
                "deploy-a": deployer("deploy-a", []),
                "deploy-b": deployer("deploy-b", [{ repository: "raxx-console" }, { repository: "raxx-api", movedFrom: "deploy-a" }]),
            },
            first.outputs,
        );
        assert.equal(run.error, undefined, run.error?.message);
        const sink = run.get(GITHUB_ACTIONS_SECRETS_TYPE, "deploy-b-github-raxx-api");
        assert.deepEqual(sink.aliases, [
            {
                name: "deploy-a-github-raxx-api",
                parentUrn: "urn:pulumi:prod::raxx-rotations::raxx-rotations:rotations:AwsAccessKeyRotation::deploy-a",
            },
        ]);
        // Its secrets are children named after it: Pulumi carries the alias down to them.
        assert.ok(run.find(REPO_SECRET, "deploy-b-github-raxx-api-AWS_ACCESS_KEY_ID"));
        // Left in the config after the move, movedFrom changes nothing.
        const later = await up(
            {
                "deploy-a": deployer("deploy-a", []),
                "deploy-b": deployer("deploy-b", [{ repository: "raxx-console" }, { repository: "raxx-api", movedFrom: "deploy-a" }], {
                    epoch: 2,
                }),
            },
            run.outputs,
        );
        assert.equal(later.error, undefined, later.error?.message);
    });

    it("a movedFrom that names a credential which did not write the place is refused (a typo)", async () => {
        const run = await up(
            {
                "deploy-a": deployer("deploy-a", [{ repository: "raxx-api" }]),
                "deploy-b": deployer("deploy-b", [{ repository: "raxx-console" }, { repository: "raxx-web", movedFrom: "deploy-a" }]),
            },
            first.outputs,
        );
        assert.match(
            run.error?.message ?? "",
            /credentials\.deploy-b\.consumers\.github\[1\]\.movedFrom: credentials\.deploy-a did not write GitHub repository raxx-web/,
        );
    });

    it("a renamed credential without renamedFrom is refused: every place would change writer", async () => {
        const run = await up(
            {
                "deploy-a2": deployer("deploy-a", [{ repository: "raxx-api" }]),
                "deploy-b": deployer("deploy-b", [{ repository: "raxx-console" }]),
            },
            first.outputs,
        );
        assert.match(
            run.error?.message ?? "",
            /credentials\.deploy-a2\.consumers\.github\[0\]: writes AWS_ACCESS_KEY_ID to GitHub repository raxx-api, which credentials\.deploy-a wrote until now.*renamedFrom: deploy-a on the credential/,
        );
    });

    it("with renamedFrom, the whole credential is taken over in place: its component aliased, its epochs judged from the old name", async () => {
        const run = await up(
            {
                "deploy-a2": deployer("deploy-a", [{ repository: "raxx-api" }], { renamedFrom: "deploy-a", epoch: 2 }),
                "deploy-b": deployer("deploy-b", [{ repository: "raxx-console" }]),
            },
            first.outputs,
        );
        assert.equal(run.error, undefined, run.error?.message);
        const rotation = run.get(AWS_ACCESS_KEY_ROTATION_TYPE, "deploy-a2");
        assert.deepEqual(rotation.aliases, [{ name: "deploy-a" }]);
        assert.equal(
            (run.outputs.rotations as Record<string, { move: string }>)["deploy-a2"].move,
            "rotate",
            "epoch 1 → 2 under the old name is a rotation, not a first deployment",
        );
        assert.ok(
            run.find(ACCESS_KEY, "deploy-a2-slot-a") && run.find(ACCESS_KEY, "deploy-a2-slot-b"),
            "both slots: the old key is kept Inactive",
        );
        const again = await up(
            {
                "deploy-a2": deployer("deploy-a", [{ repository: "raxx-api" }], { renamedFrom: "deploy-a", epoch: 2 }),
                "deploy-b": deployer("deploy-b", [{ repository: "raxx-console" }]),
            },
            run.outputs,
        );
        assert.deepEqual(
            again.get(AWS_ACCESS_KEY_ROTATION_TYPE, "deploy-a2").aliases,
            [],
            "once renamed, a leftover renamedFrom changes nothing",
        );
    });

    it("a renamedFrom still declared, or unknown to the last update, is refused", async () => {
        const both = await up(
            {
                "deploy-a": deployer("deploy-a", []),
                "deploy-a2": deployer("deploy-a", [{ repository: "raxx-api" }], { renamedFrom: "deploy-a" }),
                "deploy-b": deployer("deploy-b", [{ repository: "raxx-console" }]),
            },
            first.outputs,
        );
        assert.match(both.error?.message ?? "", /credentials\.deploy-a2\.renamedFrom: deploy-a is still declared/);
        const typo = await up(
            {
                "deploy-a2": deployer("deploy-a", [{ repository: "raxx-api" }], { renamedFrom: "deploy-x" }),
                "deploy-b": deployer("deploy-b", [{ repository: "raxx-console" }]),
            },
            first.outputs,
        );
        assert.match(typo.error?.message ?? "", /credentials\.deploy-a2\.renamedFrom: the last update applied no credential deploy-x/);
    });
});

describe("Infisical folders: one spelling per folder", () => {
    const withPaths = (...paths: string[]) => ({
        "deploy-a": deployer("deploy-a", [], { consumers: { infisical: paths.map((secretPath) => ({ secretPath })) } }),
    });

    it("'/ci/x', '/ci//x' and '/ci/x/' are one folder: a duplicate, refused", async () => {
        const run = await up(withPaths("/ci/x", "/ci//x/"));
        assert.match(
            run.error?.message ?? "",
            /credentials\.deploy-a\.consumers\.infisical\[1\]: writes AWS_ACCESS_KEY_ID to Infisical path \/ci\/x, which credentials\.deploy-a\.consumers\.infisical\[0\] already writes/,
        );
    });

    it("a respelled folder keeps its writers: the same resource names, the path as Infisical reads it", async () => {
        const before = await up(withPaths("/ci/x"));
        const after = await up(withPaths("/ci//x/"), before.outputs);
        assert.equal(after.error, undefined, after.error?.message);
        assert.deepEqual(
            after.ofType(INFISICAL).map((r) => r.name),
            before.ofType(INFISICAL).map((r) => r.name),
        );
        assert.deepEqual(
            after.ofType(INFISICAL).map((r) => r.inputs.secretPath),
            ["/ci/x", "/ci/x"],
        );
    });
});

describe("GitHub names: one spelling per secret, whatever the case", () => {
    // GitHub matches repository, environment and secret names whatever their case;
    // a new spelling is a new resource whose old twin's delete erases the secret.
    it("'raxx-api' and 'Raxx-API' are one repository: a duplicate, refused", async () => {
        const run = await up({ "deploy-a": deployer("deploy-a", [{ repository: "raxx-api" }, { repository: "Raxx-API" }]) });
        assert.match(
            run.error?.message ?? "",
            /credentials\.deploy-a\.consumers\.github\[1\]: writes AWS_ACCESS_KEY_ID to GitHub repository Raxx-API, which credentials\.deploy-a\.consumers\.github\[0\] already writes/,
        );
    });

    it("a repository or environment respelled in case after an update is refused, naming the spelling the stack recorded", async () => {
        const before = await up({ "deploy-a": deployer("deploy-a", [{ repository: "raxx-api", environment: "production" }]) });
        assert.equal(before.error, undefined, before.error?.message);
        for (const respelled of [
            { repository: "Raxx-API", environment: "production" },
            { repository: "raxx-api", environment: "Production" },
        ]) {
            const run = await up({ "deploy-a": deployer("deploy-a", [respelled], { epoch: 2 }) }, before.outputs);
            assert.match(
                run.error?.message ?? "",
                new RegExp(
                    `credentials\\.deploy-a\\.consumers\\.github\\[0\\]: writes AWS_ACCESS_KEY_ID to GitHub repository ${respelled.repository} environment ${respelled.environment}, ` +
                        `which the last update wrote as AWS_ACCESS_KEY_ID to github raxx-api environment production .*Keep the spelling the stack recorded ` +
                        `\\(github raxx-api environment production: AWS_ACCESS_KEY_ID\\)`,
                ),
            );
            assert.deepEqual(
                run.registrations.map((r) => r.type),
                [STACK_REFERENCE],
                "refused before anything is registered",
            );
        }
    });

    it("a secret name respelled in case is refused for GitHub, and taken as another secret for Infisical (case-sensitive there)", async () => {
        const names = (id: string) => ({ secretNames: { id, secret: "AWS_SECRET_ACCESS_KEY" } });
        const github = await up({ "deploy-a": deployer("deploy-a", [{ repository: "raxx-api" }], names("AWS_ACCESS_KEY_ID")) });
        const respelled = await up(
            { "deploy-a": deployer("deploy-a", [{ repository: "raxx-api" }], names("aws_access_key_id")) },
            github.outputs,
        );
        assert.match(
            respelled.error?.message ?? "",
            /writes aws_access_key_id to GitHub repository raxx-api, which the last update wrote as AWS_ACCESS_KEY_ID/,
        );

        const infisical = (id: string) => deployer("deploy-a", [], { consumers: { infisical: [{ secretPath: "/ci" }] }, ...names(id) });
        const first = await up({ "deploy-a": infisical("AWS_ACCESS_KEY_ID") });
        const renamed = await up({ "deploy-a": infisical("aws_access_key_id") }, first.outputs);
        assert.equal(renamed.error, undefined, renamed.error?.message);
        assert.deepEqual(
            renamed.ofType(INFISICAL).map((r) => r.inputs.secretName),
            ["aws_access_key_id", "AWS_SECRET_ACCESS_KEY"],
        );
    });
});

describe("two places of one credential that would get one resource name", () => {
    const refusedBeforeRegistering = (run: Run) =>
        assert.deepEqual(
            run.registrations.map((r) => r.type),
            [STACK_REFERENCE],
            "refused before anything is registered",
        );

    it("'/ci/x' and '/ci-x' (Infisical), named with both entries and what to do", async () => {
        const run = await up({
            "deploy-a": deployer("deploy-a", [], { consumers: { infisical: [{ secretPath: "/ci/x" }, { secretPath: "/ci-x" }] } }),
        });
        assert.match(
            run.error?.message ?? "",
            /credentials\.deploy-a\.consumers\.infisical\[1\]: secretPath \/ci-x would get the resource name deploy-a-infisical-prod-ci-x-AWS_ACCESS_KEY_ID, as credentials\.deploy-a\.consumers\.infisical\[0\] \(secretPath \/ci\/x\) does — Pulumi needs one name per resource/,
        );
        refusedBeforeRegistering(run);
    });

    it("repository raxx-api environment prod and repository raxx-api-prod (GitHub)", async () => {
        const run = await up({
            "deploy-a": deployer("deploy-a", [{ repository: "raxx-api", environment: "prod" }, { repository: "raxx-api-prod" }]),
        });
        assert.match(
            run.error?.message ?? "",
            /credentials\.deploy-a\.consumers\.github\[1\]: repository raxx-api-prod would get the resource name deploy-a-github-raxx-api-prod, as credentials\.deploy-a\.consumers\.github\[0\] \(repository raxx-api environment prod\) does/,
        );
        refusedBeforeRegistering(run);
    });

    it("across credentials: credential a writing b-github-c and credential a-github-b writing c", async () => {
        const run = await up({
            a: deployer("a", [{ repository: "b-github-c" }]),
            "a-github-b": deployer("a-github-b", [{ repository: "c" }]),
        });
        assert.match(
            run.error?.message ?? "",
            /credentials\.a-github-b\.consumers\.github\[0\]: repository c would get the resource name a-github-b-github-c, as credentials\.a\.consumers\.github\[0\] \(repository b-github-c\) does/,
        );
        refusedBeforeRegistering(run);
    });

    it("/etc/raxx/env and /etc/raxx-env on one host; the same files on two hosts are fine", async () => {
        const host = (h: string, envFile: string) => ({ host: h, user: "raxx", envFile, service: "raxx-vault", hostKey: HOST_KEY });
        const config2 = {
            ...config,
            "raxx-rotations:sshPrivateKey": "-----BEGIN OPENSSH PRIVATE KEY-----\nx\n-----END OPENSSH PRIVATE KEY-----\n",
        };
        const clash = await runProgram({
            credentials: {
                "deploy-a": deployer("deploy-a", [], {
                    consumers: { hosts: [host("vault.raxx.app", "/etc/raxx/env"), host("vault.raxx.app", "/etc/raxx-env")] },
                }),
            },
            config: config2,
        });
        assert.match(
            clash.error?.message ?? "",
            /credentials\.deploy-a\.consumers\.hosts\[1\]: host vault\.raxx\.app file \/etc\/raxx-env would get the resource name/,
        );
        refusedBeforeRegistering(clash);
        const fine = await runProgram({
            credentials: {
                "deploy-a": deployer("deploy-a", [], {
                    consumers: { hosts: [host("vault.raxx.app", "/etc/raxx/env"), host("db.raxx.app", "/etc/raxx/env")] },
                }),
            },
            config: config2,
        });
        assert.equal(fine.error, undefined, fine.error?.message);
    });
});

describe("host names: one spelling per env file, whatever the case", () => {
    const withHosts = {
        ...config,
        "raxx-rotations:sshPrivateKey": "-----BEGIN OPENSSH PRIVATE KEY-----\nx\n-----END OPENSSH PRIVATE KEY-----\n",
    };
    const onHost = (host: string, epoch = 1) =>
        deployer("deploy-a", [], {
            epoch,
            consumers: { hosts: [{ host, user: "raxx", envFile: "/etc/raxx/env", service: "raxx-vault", hostKey: HOST_KEY }] },
        });

    it("a host name respelled in case is refused (DNS does not tell them apart; the old writer's delete would strip the lines)", async () => {
        const before = await runProgram({ credentials: { "deploy-a": onHost("vault.raxx.app") }, config: withHosts });
        assert.equal(before.error, undefined, before.error?.message);
        const run = await runProgram({
            credentials: { "deploy-a": onHost("Vault.Raxx.app") },
            lastOutputs: before.outputs,
            config: withHosts,
        });
        assert.match(
            run.error?.message ?? "",
            /credentials\.deploy-a\.consumers\.hosts\[0\]: writes AWS_ACCESS_KEY_ID to host Vault\.Raxx\.app file \/etc\/raxx\/env, which the last update wrote as AWS_ACCESS_KEY_ID to host vault\.raxx\.app file \/etc\/raxx\/env — the same place spelled in another case/,
        );
    });
});

describe("a GitHub place an older version recorded under two spellings", () => {
    let last: Record<string, unknown>;
    before(async () => {
        const run = await up({
            "deploy-a": deployer("deploy-a", [{ repository: "raxx-api" }]),
            "deploy-b": deployer("deploy-b", [{ repository: "raxx-console" }]),
        });
        // What an older version let through: deploy-b wrote the same secrets as "Raxx-API".
        const rotations = JSON.parse(JSON.stringify(run.outputs.rotations)) as Record<string, { consumers: string[] }>;
        rotations["deploy-b"].consumers = rotations["deploy-b"].consumers.map((l) => l.replace("github raxx-console", "github Raxx-API"));
        last = { ...run.outputs, rotations };
    });

    it("keeping one writer under its own spelling is accepted, with a warning: the other's delete erases the secret, and how to put it back or avoid it", async () => {
        const run = await up(
            { "deploy-a": deployer("deploy-a", [{ repository: "raxx-api" }]), "deploy-b": deployer("deploy-b", []) },
            last,
        );
        assert.equal(run.error, undefined, run.error?.message);
        const warned = run.warnings.map((w) => w.message).filter((m) => /also written as/.test(m));
        assert.equal(warned.length, 2, "one per secret name");
        assert.match(
            warned[0],
            /credentials\.deploy-a\.consumers\.github\[0\]: GitHub repository raxx-api AWS_ACCESS_KEY_ID was also written as github Raxx-API: AWS_ACCESS_KEY_ID by credentials\.deploy-b .*run pulumi up --refresh right after it .*pulumi state delete/,
        );
    });

    it("a third spelling is refused, listing both writers and what to do", async () => {
        const run = await up(
            { "deploy-a": deployer("deploy-a", [{ repository: "RAXX-api" }]), "deploy-b": deployer("deploy-b", []) },
            last,
        );
        assert.match(
            run.error?.message ?? "",
            /credentials\.deploy-a\.consumers\.github\[0\]: writes AWS_ACCESS_KEY_ID to GitHub repository RAXX-api, which the last update wrote under 2 spellings \(github raxx-api: AWS_ACCESS_KEY_ID by credentials\.deploy-a; github Raxx-API: AWS_ACCESS_KEY_ID by credentials\.deploy-b\).*run pulumi up --refresh after it/,
        );
    });
});
