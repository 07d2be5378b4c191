// The AWS side (SOP step 1, "Pre-rotation checks"): who the credentials of this
// shell are, and for each IAM user of the matrix — that it exists, that its
// keys are what the stack knows (one Active key: the stack's, or adoptKeyId;
// any other named), and that the caller may do what a rotation does to them.
import {
    GetAccessKeyLastUsedCommand,
    GetUserCommand,
    IAMClient,
    ListAccessKeysCommand,
    SimulatePrincipalPolicyCommand,
} from "@aws-sdk/client-iam";
import { GetCallerIdentityCommand, STSClient } from "@aws-sdk/client-sts";
import { AwsAccessKeyCredential } from "../../config/schema";
import { CheckResult, fail, guarded, ok, skipped } from "./report";

/** What a rotation calls on a rotated user's keys. */
export const ROTATION_ACTIONS = [
    "iam:CreateAccessKey",
    "iam:UpdateAccessKey",
    "iam:DeleteAccessKey",
    "iam:ListAccessKeys",
    "iam:GetAccessKeyLastUsed",
];

/** The key ids the stack's last update exported for a credential. */
export type KnownKeys = (credential: string) => { active?: string; inactive?: string };

export async function awsChecks(credentials: AwsAccessKeyCredential[], known: KnownKeys, region: string): Promise<CheckResult[]> {
    if (credentials.length === 0) return [];
    const results: CheckResult[] = [];
    const sts = new STSClient({ region });
    const iam = new IAMClient({ region });
    try {
        let callerArn: string | undefined;
        results.push(
            ...(await guarded(
                "aws",
                "credentials of this shell",
                "set AWS credentials (AWS_PROFILE, SSO login, or the CI's OIDC role) allowed to manage the rotated users' keys",
                async () => {
                    const me = await sts.send(new GetCallerIdentityCommand({}));
                    callerArn = me.Arn;
                    return ok("aws", "credentials of this shell", `${me.Arn} (account ${me.Account})`);
                },
            )),
        );
        for (const c of credentials) {
            const at = `credentials.${c.name}`;
            let userArn: string | undefined;
            const exists = await guarded("aws", `IAM user ${c.iamUser} exists`, `create it, or fix ${at}.iamUser`, async () => {
                const user = await iam.send(new GetUserCommand({ UserName: c.iamUser }));
                userArn = user.User?.Arn;
                return ok("aws", `IAM user ${c.iamUser} exists`, userArn ?? "");
            });
            results.push(...exists);
            if (!userArn) continue;
            results.push(
                ...(await guarded("aws", `${c.iamUser}'s keys`, "list them: aws iam list-access-keys --user-name " + c.iamUser, () =>
                    keyCheck(iam, c, known(c.name)),
                )),
            );
            results.push(...(await permissionCheck(iam, callerArn, userArn, c.iamUser)));
        }
    } finally {
        sts.destroy();
        iam.destroy();
    }
    return results;
}

async function keyCheck(iam: IAMClient, c: AwsAccessKeyCredential, known: { active?: string; inactive?: string }): Promise<CheckResult> {
    const listed = (await iam.send(new ListAccessKeysCommand({ UserName: c.iamUser }))).AccessKeyMetadata ?? [];
    const keys =
        listed.map((k) => `${k.AccessKeyId} (${k.Status}, created ${k.CreateDate?.toISOString().slice(0, 10)})`).join(", ") || "none";
    const check = `${c.iamUser}'s keys are the ones the stack knows`;
    const expected = new Set([known.active, known.inactive, c.adoptKeyId].filter((k): k is string => !!k));
    const unknown = listed.filter((k) => k.AccessKeyId && !expected.has(k.AccessKeyId));
    const active = listed.filter((k) => k.Status === "Active");
    if (unknown.length > 0) {
        const lastUse = await Promise.all(
            unknown.map(async (k) => {
                const used = (await iam.send(new GetAccessKeyLastUsedCommand({ AccessKeyId: k.AccessKeyId }))).AccessKeyLastUsed;
                return `${k.AccessKeyId} (${k.Status}, ${used?.LastUsedDate ? `last used ${used.LastUsedDate.toISOString()} by ${used.ServiceName}` : "never used"})`;
            }),
        );
        const first = !known.active;
        return fail(
            "aws",
            check,
            `not known to the stack: ${lastUse.join(", ")}; all keys: ${keys}`,
            first && listed.length === 1
                ? `adopt it: credentials.${c.name}.adoptKeyId: ${unknown[0].AccessKeyId} with epoch: 2 (README, "Adopt the key a user has today")`
                : "find who made it (CloudTrail: CreateAccessKey on this user); delete it, or adopt it on a first deployment — a third key would stop the next bump at AWS's two-key limit",
        );
    }
    if (active.length !== 1) {
        return fail(
            "aws",
            check,
            `${active.length} Active keys: ${keys}`,
            "exactly one key should be Active (SOP step 1); if two are, a rotation or a rollback is half done — see README, Roll back",
        );
    }
    return ok("aws", check, keys);
}

/** iam:SimulatePrincipalPolicy when the caller may call it; "not checked" otherwise. */
async function permissionCheck(iam: IAMClient, callerArn: string | undefined, userArn: string, user: string): Promise<CheckResult[]> {
    const check = `the caller may rotate ${user}'s keys`;
    if (!callerArn) return [skipped("aws", check, "the caller is unknown")];
    // An assumed role's session ARN is not a principal the simulator takes: its role is.
    const principal = callerArn.replace(/^arn:(aws[a-z-]*):sts::(\d+):assumed-role\/([^/]+)\/.*$/, "arn:$1:iam::$2:role/$3");
    try {
        const out = await iam.send(
            new SimulatePrincipalPolicyCommand({ PolicySourceArn: principal, ActionNames: ROTATION_ACTIONS, ResourceArns: [userArn] }),
        );
        const denied = (out.EvaluationResults ?? []).filter((r) => r.EvalDecision !== "allowed").map((r) => r.EvalActionName);
        return denied.length === 0
            ? [ok("aws", check, ROTATION_ACTIONS.join(", "))]
            : [fail("aws", check, `denied: ${denied.join(", ")}`, `allow ${denied.join(", ")} on ${userArn} for ${principal}`)];
    } catch (err) {
        return [
            skipped(
                "aws",
                check,
                `not checked (iam:SimulatePrincipalPolicy: ${(err as Error).name}); a rotation needs ${ROTATION_ACTIONS.join(", ")}`,
            ),
        ];
    }
}
