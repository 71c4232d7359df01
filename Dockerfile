# syntax=docker/dockerfile:1.7
# Onomancer: one image with the four binaries (onomancer, onomancer-gateway, onomancer-worker,
# onomancer-scheduler). docker-compose.yml picks the role per service.

FROM rust:1-bookworm AS builder
WORKDIR /src
COPY . .
# BuildKit caches keep the registry and target dir between builds; the binaries are copied out of
# the cached target dir because cache mounts are not part of the image.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/usr/local/cargo/git \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked \
        --bin onomancer --bin onomancer-gateway --bin onomancer-worker --bin onomancer-scheduler \
 && mkdir -p /out \
 && cp target/release/onomancer target/release/onomancer-gateway \
       target/release/onomancer-worker target/release/onomancer-scheduler /out/

FROM debian:bookworm-slim AS runtime
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --system --gid 10001 onomancer \
 && useradd --system --uid 10001 --gid onomancer --home-dir /app --shell /usr/sbin/nologin onomancer
WORKDIR /app
COPY --from=builder /out/ /usr/local/bin/
COPY config /app/config
RUN mkdir -p /app/data && chown onomancer:onomancer /app/data
ENV ONOMANCER_CONFIG_DIR=/app/config \
    ONOMANCER_ENV=production
USER onomancer
EXPOSE 8080 9090
# Single-process default: every role in one process. Compose overrides the command per service.
CMD ["onomancer", "up"]
