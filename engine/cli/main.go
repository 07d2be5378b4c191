//go:build tools

// Package tools pins the Pulumi CLI as a dependency of this wrapper module so
// that go.mod/go.sum record every module it needs. The CLI itself is a main
// package (it cannot be imported), so build.sh runs
//
//	go build -ldflags "-X github.com/pulumi/pulumi/sdk/v3/go/common/version.Version=v3.274.1" github.com/pulumi/pulumi/pkg/v3/cmd/pulumi
//
// from this folder. The "tools" build tag keeps this file out of every build.
package tools

import _ "github.com/pulumi/pulumi/pkg/v3/cmd/pulumi"
