// npm run validate --kind infisical-token sets its test identity's Token Auth
// lifetime to a day and leaves it so: it must never be an identity the stack
// rotates, nor the rotator's own (tools/validate.ts refuseProductionIdentity).
import * as assert from "node:assert/strict";
import { refuseProductionIdentity } from "../../tools/validate";

describe("npm run validate: the test identity is never a production one", () => {
    const credentials = JSON.stringify({
        "vault-operator": { kind: "aws-access-key", iamUser: "raxx-vault-operator" },
        "infisical-ci": { kind: "infisical-token", identityId: "ident-ci" },
    });

    it("refuses a rotated identity and the rotator's, naming where it is used", () => {
        assert.throws(
            () => refuseProductionIdentity("ident-ci", credentials, "ident-rotator"),
            /is the identity of credentials\.infisical-ci/,
        );
        assert.throws(
            () => refuseProductionIdentity("ident-rotator", credentials, "ident-rotator"),
            /raxx-rotations:infisicalRotatorIdentityId: the validation would leave its tokens a one-day lifetime/,
        );
    });

    it("accepts an identity of its own", () => {
        assert.doesNotThrow(() => refuseProductionIdentity("ident-validate", credentials, "ident-rotator"));
        assert.doesNotThrow(() => refuseProductionIdentity(undefined, credentials, "ident-rotator"));
    });
});
