# edgechat: one container per region. The supervisor (app/supervisor.ts, bundled into dist/) runs the server and the
# metrics sidecar and receives Fly's kill_signal directly (never through npm or a shell).
# Keep the Bun version equal to package.json's devDependency "bun".
ARG BUN_VERSION=1.4.5

FROM oven/bun:${BUN_VERSION} AS deps
WORKDIR /home/bun/app
COPY package.json bun.lock ./
RUN bun install --frozen-lockfile --production --ignore-scripts

# The production bundle (npm run build): dist/, which starts in a fraction of the sources' time.
FROM oven/bun:${BUN_VERSION} AS build
WORKDIR /home/bun/app
COPY --from=deps /home/bun/app/node_modules ./node_modules
COPY package.json ./
COPY scripts/ ./scripts/
COPY app/ ./app/
COPY sidecar/ ./sidecar/
RUN bun scripts/build.ts

FROM oven/bun:${BUN_VERSION}
WORKDIR /home/bun/app
ENV NODE_ENV=production \
    PORT=8080 \
    EDGECHAT_HOST=0.0.0.0 \
    EDGECHAT_DATA_DIR=/data \
    EDGECHAT_METRICS_ADDR=127.0.0.1:2112 \
    EDGECHAT_SIDECAR_ADDR=0.0.0.0:9091 \
    EDGECHAT_REQUIRE_AUTH=1
COPY --from=deps /home/bun/app/node_modules ./node_modules
COPY package.json ./
# app/ and node_modules stay: the server bundles the web page (app/web) for the browser on its
# first visit, and the bundles read no other file from them.
COPY app/ ./app/
COPY sidecar/ ./sidecar/
COPY --from=build /home/bun/app/dist ./dist/
RUN mkdir -p /data && chown bun:bun /data
USER bun
VOLUME /data
EXPOSE 8080 9091
# The official image has no curl: Bun asks /healthz itself.
HEALTHCHECK --interval=15s --timeout=3s --start-period=10s --retries=3 \
  CMD ["bun", "-e", "fetch('http://127.0.0.1:8080/healthz').then(r => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]
STOPSIGNAL SIGINT
ENTRYPOINT ["bun", "dist/app/supervisor.js"]
