# css-push-exporter container image.
#   docker build -t css-push-exporter:0.1.0 \
#     --build-arg REVISION="$(git rev-parse HEAD)" \
#     --build-arg SOURCE="$(git remote get-url origin)" .
#   docker run -p 9321:9321 -p 127.0.0.1:9322:9322 -e CSS_PUSH_CALLBACK_KEY=... \
#     -v css-push-state:/var/lib/css-push-exporter css-push-exporter:0.1.0

# Build: the same command CI runs (.ci/run), so CI proves this stage builds.
FROM rust:1.95-slim-bookworm AS build
WORKDIR /src
# The dependencies first, in a layer of their own that only a change to the
# manifest or the lock file rebuilds: they are compiled against placeholder
# sources. The manifest names the benches, and cargo refuses to read it
# without their files.
COPY Cargo.toml Cargo.lock ./
COPY benches benches
RUN mkdir src \
    && echo 'fn main() {}' > src/main.rs \
    && touch src/lib.rs \
    && cargo build --release --locked \
    && rm -r src
# Then the real sources. COPY keeps their (older) modification times, so the
# crate roots are touched or cargo would take the placeholder build as fresh.
COPY src src
COPY build.rs ./
# The commit for --version and css_push_exporter_build_info: build.rs reads
# it here, where there is no .git to ask.
ARG REVISION=unknown
ENV CSS_PUSH_REVISION=${REVISION}
RUN touch src/main.rs src/lib.rs \
    && cargo build --release --locked \
    && install -D -m 0755 target/release/css-push-exporter /out/css-push-exporter \
    && install -d -m 0700 /out/state

# Run: glibc and libgcc, nothing else (no shell, no package manager), as the
# image's "nonroot" user (uid 65532), same Debian release as the build.
FROM gcr.io/distroless/cc-debian12:nonroot
# OCI labels, set by the build (--build-arg). VERSION defaults to
# Cargo.toml's version (tests/deploy.rs keeps them equal); the commit and the
# repository URL are only known to whoever builds.
ARG VERSION=0.1.0
ARG REVISION=unknown
ARG SOURCE=""
LABEL org.opencontainers.image.title="css-push-exporter" \
      org.opencontainers.image.description="Prometheus exporter for Tencent Cloud CSS push error callbacks" \
      org.opencontainers.image.source="${SOURCE}" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}"
COPY --from=build /out/css-push-exporter /usr/local/bin/css-push-exporter
# The state file lives on a volume; the directory belongs to the runtime
# user, so a fresh named volume is writable (Docker copies the ownership).
COPY --from=build --chown=65532:65532 /out/state /var/lib/css-push-exporter
ENV CSS_PUSH_STATE_FILE=/var/lib/css-push-exporter/state
VOLUME ["/var/lib/css-push-exporter"]
USER 65532:65532
# Split listeners, as README.md advises: callbacks on 9321; /metrics, the
# status page and the health checks on 9322 (publish it only inside).
ENV CSS_PUSH_METRICS_LISTEN_ADDRESS=0.0.0.0:9322
EXPOSE 9321 9322
ENTRYPOINT ["/usr/local/bin/css-push-exporter"]
