//go:build tools

// The commands hack/tools.sh builds from this module, imported so that `go mod tidy` keeps
// go.mod and go.sum covering every package they need (kubelet and kube-proxy reach far
// beyond what the control plane does).
package tools

import (
	_ "k8s.io/kubernetes/cmd/kube-apiserver"
	_ "k8s.io/kubernetes/cmd/kube-controller-manager"
	_ "k8s.io/kubernetes/cmd/kube-proxy"
	_ "k8s.io/kubernetes/cmd/kube-scheduler"
	_ "k8s.io/kubernetes/cmd/kubectl"
	_ "k8s.io/kubernetes/cmd/kubelet"
)
