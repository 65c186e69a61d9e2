//go:build tools

// Wrapper module: builds MinIO, the S3 server the backup job's users run, which the e2e
// tests start in a podman container through testcontainers. It is a test server only: nothing
// of it is linked into or shipped with the operator.
package tools

import (
	_ "github.com/minio/minio"
)
