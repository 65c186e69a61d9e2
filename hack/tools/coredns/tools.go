//go:build tools

// CoreDNS, built by hack/tools.sh; imported so that `go mod tidy` pins what it needs.
package tools

import _ "github.com/coredns/coredns"
