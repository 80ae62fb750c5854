//go:build tools

// The packages build.sh compiles; importing them here keeps them and their dependencies in go.mod and go.sum.
package conformance

import (
	_ "sigs.k8s.io/gateway-api/conformance"
	_ "sigs.k8s.io/gateway-api/conformance/echo-basic"
)
