# css-push-exporter container image.
#   docker build -t css-push-exporter:0.1.0 .
#   docker run -p 9321:9321 -e CSS_PUSH_CALLBACK_KEY=... \
#     -v css-push-state:/var/lib/css-push-exporter css-push-exporter:0.1.0

# Build: the same command CI runs (.ci/run), so CI proves this stage builds.
FROM rust:1.95-slim-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked \
    && install -D -m 0755 target/release/css-push-exporter /out/css-push-exporter \
    && install -d -m 0700 /out/state

# Run: glibc and libgcc, nothing else (no shell, no package manager), as the
# image's "nonroot" user (uid 65532), same Debian release as the build.
FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /out/css-push-exporter /usr/local/bin/css-push-exporter
# The state file lives on a volume; the directory belongs to the runtime
# user, so a fresh named volume is writable (Docker copies the ownership).
COPY --from=build --chown=65532:65532 /out/state /var/lib/css-push-exporter
ENV CSS_PUSH_STATE_FILE=/var/lib/css-push-exporter/state
VOLUME ["/var/lib/css-push-exporter"]
USER 65532:65532
EXPOSE 9321
ENTRYPOINT ["/usr/local/bin/css-push-exporter"]
