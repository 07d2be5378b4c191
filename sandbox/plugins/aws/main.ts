// Stand-in for the `aws` resource plugin (pulumi-aws is not available offline):
// serves only what the program uses, with terraform-provider-aws's semantics,
// against whatever IAM/STS the environment points at (moto in the sandbox).
// The engine finds it on PATH as `pulumi-resource-aws` (see sandbox/engine.ts).
import * as provider from "@pulumi/pulumi/provider";
import { ReadRequest } from "@pulumi/pulumi/proto/provider_pb";
import { Struct } from "google-protobuf/google/protobuf/struct_pb";
import * as accessKey from "./access-key";
import * as iam from "./iam-client";
import { PropertyMap, urnType } from "./values";

/** Must equal the @pulumi/aws version in package.json: the engine asks for that plugin version. */
export const version = "7.48.0";

// @pulumi/pulumi's provider server reads `req.getProperties().toJavaScript()`
// in Read, but an import sends no properties: default them to an empty Struct.
const originalGetProperties = ReadRequest.prototype.getProperties;
ReadRequest.prototype.getProperties = function (this: ReadRequest) {
    return originalGetProperties.call(this) ?? new Struct();
};

function requireAccessKey(urn: string): void {
    const type = urnType(urn);
    if (type !== accessKey.accessKeyType) {
        throw new Error(`the sandbox's stand-in aws plugin serves only ${accessKey.accessKeyType}, not ${type}`);
    }
}

const impl: provider.Provider = {
    version,

    async check(urn, _olds: PropertyMap, news: PropertyMap) {
        if (urnType(urn) !== accessKey.accessKeyType) {
            return {
                inputs: news,
                failures: [{ property: "", reason: `the sandbox's stand-in aws plugin does not serve ${urnType(urn)}` }],
            };
        }
        return accessKey.check(news ?? {});
    },

    async diff(_id, urn, olds: PropertyMap, news: PropertyMap) {
        requireAccessKey(urn);
        return accessKey.diff(olds ?? {}, news ?? {});
    },

    async create(urn, inputs: PropertyMap) {
        requireAccessKey(urn);
        return accessKey.create(inputs ?? {});
    },

    async read(id, urn, props?: PropertyMap) {
        requireAccessKey(urn);
        return accessKey.read(id, props ?? {});
    },

    async update(id, urn, olds: PropertyMap, news: PropertyMap) {
        requireAccessKey(urn);
        return accessKey.update(id, olds ?? {}, news ?? {});
    },

    async delete(id, urn, props: PropertyMap) {
        requireAccessKey(urn);
        return accessKey.remove(id, props ?? {});
    },

    async invoke(token: string, inputs?: Record<string, unknown>) {
        switch (token) {
            case "aws:iam/getUser:getUser": {
                const userName = String(inputs?.userName ?? "");
                try {
                    const u = await iam.getUser(userName);
                    return {
                        outputs: {
                            id: u.userId,
                            arn: u.arn,
                            path: u.path,
                            userId: u.userId,
                            userName: u.userName,
                            permissionsBoundary: "",
                            tags: {},
                        },
                    };
                } catch (err) {
                    throw new Error(`getUser ${userName}: ${iam.describeError(err)}`);
                }
            }
            case "aws:iam/getAccessKeys:getAccessKeys": {
                // data.aws_iam_access_keys (internal/service/iam/access_keys_data_source.go):
                // id = user; access_keys = { access_key_id, create_date (RFC 3339), status } per
                // key, metadata only; a missing user is an error, not an empty list.
                const user = String(inputs?.user ?? "");
                let keys: iam.KeyMetadata[];
                try {
                    keys = await iam.listAccessKeys(user);
                } catch (err) {
                    throw new Error(`reading IAM Access Keys (${user}): ${iam.describeError(err)}`);
                }
                const accessKeys = keys.map((k) => ({
                    accessKeyId: k.id,
                    status: k.status,
                    ...(k.createDate !== undefined ? { createDate: k.createDate } : {}),
                }));
                return { outputs: { id: user, user, accessKeys } };
            }
            case "aws:index/getCallerIdentity:getCallerIdentity": {
                let who: iam.CallerIdentity;
                try {
                    who = await iam.getCallerIdentity();
                } catch (err) {
                    throw new Error(`getCallerIdentity: ${iam.describeError(err)}`);
                }
                return { outputs: { accountId: who.accountId, arn: who.arn, id: who.accountId, userId: who.userId } };
            }
            case "aws:index/getRegion:getRegion": {
                const name = iam.region();
                return { outputs: { id: name, name, region: name, description: name, endpoint: `ec2.${name}.amazonaws.com` } };
            }
            default:
                throw new Error(`the sandbox's stand-in aws plugin does not serve the function ${token}`);
        }
    },
};

provider.main(impl, process.argv.slice(2)).catch((err: unknown) => {
    console.error(`pulumi-resource-aws (stand-in): ${err instanceof Error ? err.message : String(err)}`);
    process.exit(1);
});
