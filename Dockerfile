# keelson's container image: `keelson serve` on 0.0.0.0:8080 as uid 10001, data in /data, a
# read-only root filesystem is fine (only /data and /tmp are written). Install: docs/install.md.
#
# The TypeScript sources run as they are: Node 24 strips the types itself, but never below
# node_modules, hence /app/src. The build's registry access is npm's; the image holds production
# dependencies only and no embedded PostgreSQL (a pod uses DATABASE_URL).
ARG NODE_IMAGE=node:24-bookworm-slim

FROM ${NODE_IMAGE} AS deps
WORKDIR /app
COPY package.json package-lock.json ./
# --omit=optional drops embedded-postgres (hundreds of MB of binaries, useless in a pod);
# --ignore-scripts: no dependency runs code at build time, and none needs to.
RUN npm ci --omit=dev --omit=optional --ignore-scripts --no-audit --no-fund \
 && npm cache clean --force

FROM ${NODE_IMAGE}
# git and ssh for ops repos (https and ssh remotes), CA certificates for https remotes
RUN apt-get update \
 && apt-get install -y --no-install-recommends git ca-certificates openssh-client \
 && rm -rf /var/lib/apt/lists/*
# uid 10001 gets a passwd entry: ssh (ops repos over ssh) and `keelson token create` refuse a
# user that does not exist. Its home is /data, the one writable place that persists.
RUN groupadd --gid 10001 keelson \
 && useradd --uid 10001 --gid 10001 --home-dir /data --no-create-home --shell /usr/sbin/nologin keelson \
 && mkdir /data && chown 10001:10001 /data
WORKDIR /app
# owned by root: the process can read its code, not change it
COPY --from=deps /app/node_modules ./node_modules
COPY package.json ./
COPY bin ./bin
COPY machines ./machines
COPY migrations ./migrations
COPY src ./src
RUN ln -s /app/bin/keelson.js /usr/local/bin/keelson
ENV NODE_ENV=production \
    KEELSON_DATA_DIR=/data \
    KEELSON_HOST=0.0.0.0 \
    PORT=8080 \
    HOME=/data
USER 10001:10001
EXPOSE 8080
# keelson is PID 1: it handles SIGTERM and SIGINT itself (Node installs no default handlers for
# PID 1) and exits within KEELSON_SHUTDOWN_TIMEOUT (20 s), inside Kubernetes' 30 s grace period.
ENTRYPOINT ["keelson"]
CMD ["serve"]
