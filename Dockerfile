# syntax=docker/dockerfile:1
# Satchel: one image for every role. `docker build -t satchel:latest .`, then e.g.
#   docker run --rm satchel:latest help
#   (deploy/kubernetes/ runs it as controller, metadata and storage-node)

# Build: `npm ci` installs every dependency, dev ones included, and runs the `prepare` script, which is
# `npm run build` (tsc + the .proto files into dist/). Dev dependencies (typescript) are needed until then, so
# they are pruned only after the build.
FROM node:20-slim AS build
WORKDIR /app
COPY . .
RUN --mount=type=cache,target=/root/.npm npm ci && npm prune --omit=dev

# Run: only what `node bin/satchel.js` loads: the launcher, the compiled code and production dependencies
# (classic-level ships prebuilt binaries for linux x64/arm64 glibc, which node:20-slim is).
FROM node:20-slim
WORKDIR /app
ENV NODE_ENV=production
COPY --from=build /app/package.json /app/package-lock.json ./
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/bin ./bin
COPY --from=build /app/dist ./dist
# The image's own `node` user (uid 1000); the Kubernetes manifests run as it too.
USER node
# gRPC (controller 7070, metadata 7072 in deploy/kubernetes), console 7071, storage nodes 7000 and their RESP
# front door 6379.
EXPOSE 6379 7000 7070 7071 7072
ENTRYPOINT ["node", "bin/satchel.js"]
CMD ["help"]
