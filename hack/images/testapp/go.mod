// The HTTP test application ComposeDeployment's tests deploy, built static by hack/images.ts.
module gitsync.dev/hack/images/testapp

go 1.25.0
