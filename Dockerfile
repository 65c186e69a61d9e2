# The operator's image for a registry. Nothing on the development machines runs Docker: there
# the same image is built by hack/build-image.ts (npm run image) as an OCI archive.
FROM node:24-bookworm-slim AS build
WORKDIR /src
COPY package.json package-lock.json ./
COPY hack/patch-deps.mjs hack/
RUN npm ci --ignore-scripts --no-audit --no-fund && node hack/patch-deps.mjs
COPY . .
RUN npx tsc -p tsconfig.json

FROM node:24-bookworm-slim
WORKDIR /app
ENV NODE_ENV=production
COPY package.json package-lock.json ./
COPY hack/patch-deps.mjs hack/
RUN npm ci --omit=dev --ignore-scripts --no-audit --no-fund && node hack/patch-deps.mjs && npm cache clean --force
COPY --from=build /src/dist/src ./dist/src
# gitsync and the kubectl plugin on PATH, for kubectl exec and for copying out of the image.
RUN ln -s /app/dist/src/main.js /usr/local/bin/gitsync && ln -s /app/dist/src/main.js /usr/local/bin/kubectl-gitsync
USER 65532:65532
ENTRYPOINT ["node", "/app/dist/src/main.js"]
