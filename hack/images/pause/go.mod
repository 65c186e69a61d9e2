// The sandbox ("pause") image's program, built static by hack/images.ts.
module gitsync.dev/hack/images/pause

go 1.25.0
