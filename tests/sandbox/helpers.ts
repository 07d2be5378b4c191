// Shared by the sandbox tests: a World per suite and SDK clients pointed at it.
import { IAMClient } from "@aws-sdk/client-iam";
import { STSClient } from "@aws-sdk/client-sts";
import { World } from "../../sandbox/world";

/** The first run installs moto into the cache (about a minute); later runs start in under a second. */
export const WORLD_START_TIMEOUT_MS = 240_000;

export function startWorld(iamUsers: string[], githubOwner = "raxx-app"): Promise<World> {
    return World.start({ iamUsers, githubOwner, log: process.env.SANDBOX_DEBUG ? (l) => console.log(l) : undefined });
}

/** An IAM client as the program's stand-in aws plugin would have: the world's env. */
export function adminIam(world: World): IAMClient {
    const env = world.awsEnv();
    return new IAMClient({
        endpoint: env.AWS_ENDPOINT_URL_IAM,
        region: env.AWS_REGION,
        credentials: { accessKeyId: env.AWS_ACCESS_KEY_ID, secretAccessKey: env.AWS_SECRET_ACCESS_KEY },
        maxAttempts: 1,
    });
}

export function stsAs(world: World, accessKeyId: string, secretAccessKey: string): STSClient {
    return new STSClient({
        endpoint: world.endpoints.sts,
        region: "us-east-1",
        credentials: { accessKeyId, secretAccessKey },
        maxAttempts: 1,
    });
}

export async function expectReject(p: Promise<unknown>): Promise<Error & { $metadata?: { httpStatusCode?: number } }> {
    try {
        await p;
    } catch (err) {
        return err as Error;
    }
    throw new Error("expected a rejection");
}
