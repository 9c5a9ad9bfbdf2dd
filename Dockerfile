# syntax=docker/dockerfile:1
# One image for both trackers (and tracker-admin, tracker-client).
#   docker build -t tracker-cluster .
#   docker run --rm tracker-cluster tracker-primary --help
# See docs/operations.md, "Containers".

# --- build: compile TypeScript and better-sqlite3 (node-gyp needs python3, make, g++: all in this image)
FROM node:20-bookworm AS build
WORKDIR /app
COPY package.json package-lock.json tsconfig.json tsconfig.base.json ./
COPY packages ./packages
# npm ci runs the root "prepare" script (tsc -b); the explicit build below makes a failure obvious.
RUN npm ci --no-audit --no-fund \
 && npx tsc -b \
 && npm prune --omit=dev --no-audit --no-fund \
 && rm -rf packages/*/src packages/*/test packages/*/tsconfig.json packages/*/dist/.tsbuildinfo

# --- runtime: slim Node 20, production dependencies only, non-root
FROM node:20-bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends tini \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /app
ENV NODE_ENV=production \
    PATH=/app/node_modules/.bin:$PATH \
    TRACKER_HOST=0.0.0.0 \
    TRACKER_ADMIN_HOST=0.0.0.0 \
    TRACKER_ADMIN_PORT=9101 \
    TRACKER_LOG_FORMAT=json
# The built workspace: node_modules (with the workspace links and the compiled
# better-sqlite3) and each package's dist/ and bin/, owned by root: read-only to the tracker.
COPY --from=build /app/package.json /app/package-lock.json ./
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/packages ./packages
RUN mkdir -p /data && chown node:node /data
USER node
VOLUME ["/data"]
EXPOSE 7001 7002 9101
# tini is PID 1: it forwards SIGTERM to node (graceful stop: answer, commit, flush the replica) and reaps zombies.
ENTRYPOINT ["/usr/bin/tini", "--"]
CMD ["tracker-primary", "--db", "/data/primary.db"]
# Ready = database open and serving (the tracker's own /readyz on TRACKER_ADMIN_PORT); no curl needed.
HEALTHCHECK --interval=10s --timeout=5s --start-period=20s --retries=3 \
  CMD ["tracker-admin", "health", "--ready"]
