#!/usr/bin/env bash
# Builds a minimal local stand-in for docker.io/library/node:20-bookworm-slim from this machine's
# own files, for building the Dockerfile where no image registry can be reached:
#
#   test/deploy/local-node-base.sh [IMAGE]        (default localhost/lifelong-node-base:20)
#   podman build --build-arg NODE_IMAGE=localhost/lifelong-node-base:20 -t lifelong-gen .
#
# The image holds the host's node and npm (laid out as in the official image: /usr/local/bin),
# /bin/sh and a few coreutils (env mkdir chown rm ls cat), the shared libraries that node,
# onnxruntime-node and sharp load, the host's CA certificates (NODE_EXTRA_CA_CERTS when the
# host sets it, so that npm ci works behind the same TLS-inspecting proxy as the host), and a
# node user with uid 1000. It takes seconds instead of a debootstrap.
set -euo pipefail
image=${1:-localhost/lifelong-node-base:20}
repo=$(cd "$(dirname "$0")/../.." && pwd)

for tool in node npm ldd ldconfig tar podman; do
  command -v "$tool" >/dev/null || { echo "local-node-base: $tool is missing" >&2; exit 1; }
done
node_bin=$(readlink -f "$(command -v node)")
npm_dir=$(npm root -g)/npm
[ -f "$npm_dir/bin/npm-cli.js" ] || { echo "local-node-base: npm not found under $npm_dir" >&2; exit 1; }

root=$(mktemp -d /tmp/lifelong-node-base.XXXXXX)
trap 'rm -rf "$root"' EXIT
cd "$root"
mkdir -p usr/bin usr/sbin usr/lib usr/lib64 usr/local/bin usr/local/lib/node_modules etc/ssl/certs tmp root home/node
ln -s usr/bin bin && ln -s usr/sbin sbin && ln -s usr/lib lib && ln -s usr/lib64 lib64
chmod 1777 tmp && chmod 700 root && chown 1000:1000 home/node

cp "$node_bin" usr/local/bin/node
cp -a "$npm_dir" usr/local/lib/node_modules/npm
ln -s ../lib/node_modules/npm/bin/npm-cli.js usr/local/bin/npm
ln -s ../lib/node_modules/npm/bin/npx-cli.js usr/local/bin/npx
cp "$(readlink -f /bin/sh)" usr/bin/sh
for tool in env mkdir chown rm ls cat; do cp "$(readlink -f "$(command -v $tool)")" usr/bin/$tool; done

# Shared libraries: what ldd lists for node, sh and env, the C++ runtime that the native addons
# load, and whatever else the installed addons' .node / .so files list (when node_modules exists).
objects=("$node_bin" /bin/sh usr/bin/*)
# Read the cache once: awk's early exit on a pipe from ldconfig would SIGPIPE it, and pipefail
# turns that into a failure once the cache is bigger than a pipe buffer (as on CI).
cache=$(ldconfig -p)
for soname in libstdc++.so.6 libgcc_s.so.1 libm.so.6 librt.so.1 libdl.so.2 libpthread.so.0 libresolv.so.2; do
  path=$(awk -v n="$soname" '$1 == n && /x86-64|x86_64|64bit/ { print $NF; exit }' <<<"$cache")
  [ -z "$path" ] && path=$(awk -v n="$soname" '$1 == n { print $NF; exit }' <<<"$cache")
  [ -n "$path" ] && objects+=("$path")
done
if [ -d "$repo/node_modules" ]; then
  while IFS= read -r f; do objects+=("$f"); done < <(find "$repo/node_modules/onnxruntime-node/bin" "$repo/node_modules/@img" \
    \( -path '*/linux/*' -o -path '*linux-*' \) \( -name '*.node' -o -name '*.so*' \) -type f 2>/dev/null)
fi
for obj in "${objects[@]}"; do
  [ -e "$obj" ] || continue
  # the object itself, if it is a system library
  case "$obj" in /lib/*|/lib64/*|/usr/lib/*|/usr/lib64/*) printf '%s\n' "$obj" ;; esac
  ldd "$obj" 2>/dev/null | grep -o '/[^ ]*' || true
done | grep -v "^$repo/" | sort -u | while IFS= read -r lib; do
  mkdir -p ".$(dirname "$lib")"
  cp -L "$lib" ".$lib"
done

printf 'root:x:0:0:root:/root:/bin/sh\nnode:x:1000:1000::/home/node:/bin/sh\n' > etc/passwd
printf 'root:x:0:\nnode:x:1000:\n' > etc/group
printf 'hosts: files dns\n' > etc/nsswitch.conf
[ -f /etc/ssl/certs/ca-certificates.crt ] && cp /etc/ssl/certs/ca-certificates.crt etc/ssl/certs/
changes=(--change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' --change 'ENV NPM_CONFIG_UPDATE_NOTIFIER=false' --change 'CMD ["node"]')
if [ -n "${NODE_EXTRA_CA_CERTS:-}" ] && [ -f "$NODE_EXTRA_CA_CERTS" ]; then
  cp "$NODE_EXTRA_CA_CERTS" etc/ssl/certs/host-extra-ca.crt
  changes+=(--change 'ENV NODE_EXTRA_CA_CERTS=/etc/ssl/certs/host-extra-ca.crt')
fi

tar -C "$root" -c . | podman import -q "${changes[@]}" - "$image" >/dev/null
echo "$image ($(du -sh "$root" | cut -f1), node $("$node_bin" --version), npm $(npm --version))"
