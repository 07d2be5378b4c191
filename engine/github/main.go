// Command pulumi-resource-github is the GitHub resource plugin for the engine
// tier: terraform-provider-github bridged the way pulumi-github does it, since
// pulumi-github's own provider module is not served by the Go module proxy here.
// Versions are pinned in go.mod (upstream of @pulumi/github 6.15.0).
package main

import (
	"github.com/integrations/terraform-provider-github/v6/github"
	"github.com/pulumi/pulumi-terraform-bridge/v3/pkg/tfbridge"
	"github.com/pulumi/pulumi-terraform-bridge/v3/pkg/tfbridge/tokens"
	shimv2 "github.com/pulumi/pulumi-terraform-bridge/v3/pkg/tfshim/sdk-v2"
)

// version is what the plugin reports; it must match the @pulumi/github SDK in
// package.json, because the engine looks the plugin up by that version.
const version = "6.15.0"

func main() {
	info := tfbridge.ProviderInfo{
		P:          shimv2.NewProvider(github.NewProvider(version, "raxx-rotations")()),
		Name:       "github",
		Version:    version,
		GitHubOrg:  "integrations",
		Repository: "https://github.com/pulumi/pulumi-github",
	}
	info.MustComputeTokens(tokens.SingleModule("github_", "index", tokens.MakeStandard("github")))
	// Running resources needs no Pulumi schema; the SDK side has its own.
	tfbridge.Main("github", version, info, []byte("{}"))
}
