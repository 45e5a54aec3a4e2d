# lifelong-gen: one image for the server (the default command) and for training and evaluation.
#
#   docker build -t lifelong-gen .
#   docker run --rm -p 3000:3000 --stop-timeout 20 -v "$(readlink -f results/latest):/run-data:ro" lifelong-gen
#
# The run folder (the one holding export/manifest.json) is mounted read-only at /run-data; the
# server reads only its export/ and writes nothing. Training runs the same image with
# `node /app/dist/train.js ...` and a volume at /data, the working directory (docs/deploy.md).
#
# Build arguments:
#   NODE_IMAGE     base image of both stages (Node.js 20 on glibc)
#   RUNTIME_IMAGE  base image of the final stage (default NODE_IMAGE), e.g. one with CUDA 12 and
#                  cuDNN 9 libraries for --device cuda
#   ORT_CUDA=1     add onnxruntime-node's CUDA provider libraries (npm run install:cuda; downloads
#                  from NuGet during the build)

ARG NODE_IMAGE=docker.io/library/node:20-bookworm-slim
ARG RUNTIME_IMAGE=${NODE_IMAGE}

FROM ${NODE_IMAGE} AS build
WORKDIR /app
# The dependency layer is rebuilt only when the lock file changes. .npmrc sets ignore-scripts:
# no dependency install script runs (onnxruntime-node and sharp ship their binaries as files).
COPY package.json package-lock.json .npmrc ./
RUN npm ci --no-audit --no-fund
COPY . .
RUN npm run build
ARG ORT_CUDA=0
RUN if [ "$ORT_CUDA" = 1 ]; then npm run install:cuda; fi
# Only production dependencies, and onnxruntime-node's native libraries for this platform only
# (the package carries them for five platforms, about 250 MB that would never load here).
RUN npm prune --omit=dev --no-audit --no-fund \
 && node -e "const fs = require('fs'), bin = 'node_modules/onnxruntime-node/bin/napi-v6'; \
for (const os of fs.readdirSync(bin)) for (const arch of fs.readdirSync(bin + '/' + os)) \
if (os !== process.platform || arch !== process.arch) fs.rmSync(bin + '/' + os + '/' + arch, { recursive: true });"

FROM ${RUNTIME_IMAGE}
WORKDIR /app
# Owned by root and read-only to the user that runs: nothing under /app is written at run time
# (dist/web/ is built, so the server bundles nothing at startup).
COPY --from=build /app/package.json ./
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
# /data: the working directory, the node user's. Training writes datasets/ and results/ under
# it: mount a volume there (a new named volume takes this ownership).
RUN mkdir -p /data && chown 1000:1000 /data
WORKDIR /data
# The node user of the official image, by number so that Kubernetes' runAsNonRoot can check it.
USER 1000:1000
# onnxruntime would otherwise try to store a telemetry device id under $HOME/.cache (a warning
# on a read-only root file system).
ENV PORT=3000 ORT_DISABLE_TELEMETRY=1
EXPOSE 3000
HEALTHCHECK --interval=10s --timeout=3s --start-period=30s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:' + (process.env.PORT || 3000) + '/healthz').then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]
# node is PID 1 and handles SIGTERM itself: /healthz turns 503, serving goes on for --drain-ms,
# then running requests finish and it exits 0. No init process is needed.
CMD ["node", "/app/dist/serve.js", "--run", "/run-data"]
