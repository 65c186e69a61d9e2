#!/usr/bin/env bash
# Installs the Debian packages the tests and the demo use, when they are missing (these
# machines run as root): the node's container runtime (containerd, runc, the CNI plugins,
# iptables, conntrack), lua5.1, the Lua of Argo CD's gopher-lua, for the health scripts,
# age, the CLI the old partition-sync tool encrypts with (interop tests), and OpenSSH's sshd,
# run as a plain process to serve git over SSH, with ssh-keygen for its keys, and podman, whose
# Docker-compatible API runs MinIO for the e2e tests through testcontainers, and tinyproxy, the
# HTTP proxy (with CONNECT) that git, S3 and STS traffic is sent through in the proxy tests.
set -euo pipefail

packages=()
command -v lua5.1 >/dev/null 2>&1 || packages+=(lua5.1)
command -v containerd >/dev/null 2>&1 || packages+=(containerd)
[ -x /usr/sbin/runc ] || packages+=(runc)
[ -x /usr/lib/cni/bridge ] || packages+=(containernetworking-plugins)
command -v iptables >/dev/null 2>&1 || packages+=(iptables)
command -v conntrack >/dev/null 2>&1 || packages+=(conntrack)
command -v age >/dev/null 2>&1 || packages+=(age)
[ -x /usr/sbin/sshd ] || packages+=(openssh-server)
command -v ssh-keygen >/dev/null 2>&1 || packages+=(openssh-client)
command -v podman >/dev/null 2>&1 || packages+=(podman)
command -v tinyproxy >/dev/null 2>&1 || packages+=(tinyproxy)
[ ${#packages[@]} -eq 0 ] && exit 0

if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null 2>&1; then
  echo "Missing Debian packages: ${packages[*]}. Install them (apt-get install ${packages[*]}) and run again." >&2
  exit 1
fi
echo "Installing ${packages[*]} (once per machine) ..." >&2
export DEBIAN_FRONTEND=noninteractive
apt-get install -y -qq "${packages[@]}" >/dev/null 2>&1 || { apt-get update -qq >/dev/null && apt-get install -y -qq "${packages[@]}" >/dev/null; }
