import * as assert from "node:assert/strict";
import { scenarioFiles } from "./scenarios";

describe("engine tier: scenario files", () => {
    it("cover the engine, consumers and gates issues", () => {
        for (const name of [
            "first-deploy-and-bump", "retire", "collapsed-bump", "rollback", "two-credentials", "consumer-removed",
            "refused-jump", "adoption", "github-500", "killed-up", "drift", "heroku-429", "infisical-401",
            "gate-validation", "gate-probe", "gate-usage", "host-unreachable", "audit-webhook-down", "infisical-token",
        ]) {
            assert.ok(scenarioFiles.includes(`${name}.yaml`), `sandbox/scenarios/${name}.yaml is missing`);
        }
    });
});
