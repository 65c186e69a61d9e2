#!/usr/bin/env bash
# Builds the servers the e2e environment runs (kube-apiserver, kube-controller-manager,
# kube-scheduler, kubelet, kube-proxy, kubectl, etcd, CoreDNS, versitygw, helm, Prometheus, promtool, MinIO and CNCF Distribution's registry) from their Go modules, once per version, into a cache outside
# the checkout, and prints one `name=path` line per binary. `--bench` adds Flux's source-controller.
#
# The wrapper modules under hack/tools/ pin the versions; their go.sum makes the build
# reproducible. A binary already in the cache is never rebuilt, so CI clones afresh but
# builds only on a new machine. Override the cache with GITSYNC_TOOLS_DIR.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
cache=${GITSYNC_TOOLS_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/gitsync-operator/bin}
mkdir -p "$cache"
export GOTOOLCHAIN=local CGO_ENABLED=0 GOFLAGS=-buildvcs=false

# name | wrapper module | package | module whose version keys the cache
tools=(
  "etcd|etcd|go.etcd.io/etcd/server/v3|go.etcd.io/etcd/server/v3"
  "versitygw|s3|github.com/versity/versitygw/cmd/versitygw|github.com/versity/versitygw"
  "kube-apiserver|kube|k8s.io/kubernetes/cmd/kube-apiserver|k8s.io/kubernetes"
  "kube-controller-manager|kube|k8s.io/kubernetes/cmd/kube-controller-manager|k8s.io/kubernetes"
  "kubectl|kube|k8s.io/kubernetes/cmd/kubectl|k8s.io/kubernetes"
  "kube-scheduler|kube|k8s.io/kubernetes/cmd/kube-scheduler|k8s.io/kubernetes"
  "kubelet|kube|k8s.io/kubernetes/cmd/kubelet|k8s.io/kubernetes"
  "kube-proxy|kube|k8s.io/kubernetes/cmd/kube-proxy|k8s.io/kubernetes"
  "coredns|coredns|github.com/coredns/coredns|github.com/coredns/coredns"
  "helm|helm|helm.sh/helm/v3/cmd/helm|helm.sh/helm/v3"
  "prometheus|prometheus|github.com/prometheus/prometheus/cmd/prometheus|github.com/prometheus/prometheus"
  "promtool|prometheus|github.com/prometheus/prometheus/cmd/promtool|github.com/prometheus/prometheus"
  "minio|minio|github.com/minio/minio|github.com/minio/minio"
  "registry|registry|github.com/distribution/distribution/v3/cmd/registry|github.com/distribution/distribution/v3"
)

# With --bench, also the peers the benchmarks run side by side (the tests never need them).
if [ "${1:-}" = "--bench" ]; then
  tools+=("source-controller|flux|github.com/fluxcd/source-controller|github.com/fluxcd/source-controller")
fi

for entry in "${tools[@]}"; do
  IFS='|' read -r name dir pkg mod <<<"$entry"
  version=$(cd "$here/tools/$dir" && go list -m -f '{{.Version}}' "$mod")
  out="$cache/$name-$version"
  if [ ! -x "$out" ]; then
    echo "Building $name $version (once per machine) ..." >&2
    start=$(date +%s)
    tmp="$out.tmp.$$"
    (cd "$here/tools/$dir" && go build -trimpath -ldflags='-s -w' -o "$tmp" "$pkg")
    mv -f "$tmp" "$out"
    echo "Built $name in $(( $(date +%s) - start ))s" >&2
  fi
  echo "$name=$out"
done
