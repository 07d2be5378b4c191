// aws:iam/accessKey:AccessKey with terraform-provider-aws's semantics
// (internal/service/iam/access_key.go):
// - `user` and `pgpKey` force replacement; `status` (default Active) updates in place;
// - a create with status Inactive is CreateAccessKey, then UpdateAccessKey;
// - read of a key (or user) that is gone removes it from state;
// - delete is DeleteAccessKey, and a key already gone counts as deleted;
// - import learns the user through GetAccessKeyLastUsed; an imported key has no secret.
// The secret is returned marked secret, so the state stores it encrypted, and no
// error message ever quotes it.
import type * as provider from "@pulumi/pulumi/provider";
import * as iam from "./iam-client";
import { isUnknown, PropertyMap, reveal, secret, str } from "./values";

export const accessKeyType = "aws:iam/accessKey:AccessKey";

const statuses = ["Active", "Inactive"] as const;

/** A create that made the key but could not finish: the engine records the key anyway. */
class ResourceInitError extends Error {
    constructor(
        message: string,
        readonly id: string,
        readonly properties: PropertyMap,
        readonly reasons: string[],
    ) {
        super(message);
    }
}

function outputs(key: iam.KeyMetadata, previous: PropertyMap = {}): PropertyMap {
    const outs: PropertyMap = { ...previous, user: key.user, status: key.status };
    if (key.createDate !== undefined) {
        outs.createDate = key.createDate;
    }
    if (outs.secret !== undefined && outs.secret !== null) {
        outs.secret = secret(outs.secret);
    }
    return outs;
}

function inputsFrom(outs: PropertyMap): PropertyMap {
    const ins: PropertyMap = { user: outs.user, status: outs.status };
    if (outs.pgpKey !== undefined && outs.pgpKey !== null && reveal(outs.pgpKey) !== "") {
        ins.pgpKey = outs.pgpKey;
    }
    return ins;
}

export async function check(news: PropertyMap): Promise<provider.CheckResult> {
    const failures: provider.CheckFailure[] = [];
    const inputs: PropertyMap = { ...news };
    const user = reveal(news.user);
    if (!isUnknown(user) && (typeof user !== "string" || user === "")) {
        failures.push({ property: "user", reason: "user is required: the name of the IAM user that owns the key" });
    }
    const status = reveal(news.status);
    if (status === undefined || status === null || status === "") {
        inputs.status = "Active";
    } else if (!isUnknown(status) && !statuses.includes(status as iam.KeyStatus)) {
        failures.push({ property: "status", reason: `status must be one of ${statuses.join(", ")}` });
    }
    const pgpKey = reveal(news.pgpKey);
    if (pgpKey === null || pgpKey === "") {
        delete inputs.pgpKey;
    } else if (pgpKey !== undefined && !isUnknown(pgpKey)) {
        failures.push({
            property: "pgpKey",
            reason: "pgpKey (encrypted secret output) is not supported by the sandbox's stand-in aws plugin",
        });
    }
    return { inputs, failures };
}

export async function diff(olds: PropertyMap, news: PropertyMap): Promise<provider.DiffResult> {
    const replaces: string[] = [];
    const differs = (key: string, dflt: string) => isUnknown(news[key]) || (str(olds, key) ?? dflt) !== (str(news, key) ?? dflt);
    if (differs("user", "")) {
        replaces.push("user");
    }
    if (differs("pgpKey", "")) {
        replaces.push("pgpKey");
    }
    const statusChanged = differs("status", "Active");
    return { changes: replaces.length > 0 || statusChanged, replaces, deleteBeforeReplace: false };
}

export async function create(inputs: PropertyMap): Promise<provider.CreateResult> {
    const user = str(inputs, "user") ?? "";
    let key: iam.CreatedKey;
    try {
        key = await iam.createAccessKey(user);
    } catch (err) {
        throw new Error(`creating IAM Access Key for user ${user}: ${iam.describeError(err)}`);
    }
    const outs = outputs(key, { secret: secret(key.secret) });
    if (str(inputs, "status") === "Inactive") {
        try {
            await iam.updateAccessKeyStatus(user, key.id, "Inactive");
        } catch (err) {
            const message = `deactivating IAM Access Key ${key.id} (user ${user}) after creating it: ${iam.describeError(err)}`;
            throw new ResourceInitError(message, key.id, outs, [message]);
        }
        outs.status = "Inactive";
    }
    return { id: key.id, outs };
}

export async function read(id: string, props: PropertyMap): Promise<provider.ReadResult> {
    let user = str(props, "user");
    if (user === undefined) {
        // An import: the engine sends only the id.
        try {
            user = await iam.ownerOfAccessKey(id);
        } catch (err) {
            throw new Error(`importing IAM Access Key ${id}: fetching its user via GetAccessKeyLastUsed: ${iam.describeError(err)}`);
        }
        if (user === undefined) {
            throw new Error(`importing IAM Access Key ${id}: no such key`);
        }
    }
    let key: iam.KeyMetadata | undefined;
    try {
        key = await iam.findAccessKey(user, id);
    } catch (err) {
        throw new Error(`reading IAM Access Key ${id} (user ${user}): ${iam.describeError(err)}`);
    }
    if (key === undefined) {
        // Gone out of band: terraform-provider-aws drops it from state.
        return {};
    }
    const outs = outputs(key, props);
    return { id, props: outs, inputs: inputsFrom(outs) };
}

export async function update(id: string, olds: PropertyMap, news: PropertyMap): Promise<provider.UpdateResult> {
    const user = str(olds, "user") ?? str(news, "user") ?? "";
    const status = (str(news, "status") ?? "Active") as iam.KeyStatus;
    if ((str(olds, "status") ?? "Active") !== status) {
        try {
            await iam.updateAccessKeyStatus(user, id, status);
        } catch (err) {
            throw new Error(`updating IAM Access Key ${id} (user ${user}) to ${status}: ${iam.describeError(err)}`);
        }
    }
    let key: iam.KeyMetadata | undefined;
    try {
        key = await iam.findAccessKey(user, id);
    } catch (err) {
        throw new Error(`reading IAM Access Key ${id} (user ${user}) after the update: ${iam.describeError(err)}`);
    }
    if (key === undefined) {
        throw new Error(`updating IAM Access Key ${id} (user ${user}): the key no longer exists`);
    }
    return { outs: outputs(key, olds) };
}

export async function remove(id: string, props: PropertyMap): Promise<void> {
    const user = str(props, "user");
    try {
        await iam.deleteAccessKey(user, id);
    } catch (err) {
        throw new Error(`deleting IAM Access Key ${id} (user ${user ?? "unknown"}): ${iam.describeError(err)}`);
    }
}
