# syncret container image: a static (musl) binary on a distroless base, running as non-root with a read-only
# root filesystem (it writes nothing to disk). Multi-arch with buildx:
#
#   docker buildx build --platform linux/amd64,linux/arm64 -t ghcr.io/syncret/syncret:0.1.0 .
#
# Only `ring` has C code (built with musl-gcc); nothing links OpenSSL.
ARG RUST_VERSION=1.95

FROM --platform=$BUILDPLATFORM rust:${RUST_VERSION}-bookworm AS build
ARG TARGETARCH
RUN set -eu; \
    case "$TARGETARCH" in \
      amd64) echo x86_64-unknown-linux-musl > /target; gcc=x86_64-linux-musl-gcc ;; \
      arm64) echo aarch64-unknown-linux-musl > /target; gcc=aarch64-linux-musl-gcc ;; \
      *) echo "unsupported TARGETARCH $TARGETARCH" >&2; exit 1 ;; \
    esac; \
    apt-get update; \
    apt-get install -y --no-install-recommends musl-tools; \
    if [ "$TARGETARCH" = arm64 ] && [ "$(uname -m)" != aarch64 ]; then \
      apt-get install -y --no-install-recommends gcc-aarch64-linux-gnu; \
    fi; \
    rm -rf /var/lib/apt/lists/*; \
    rustup target add "$(cat /target)"
WORKDIR /src
COPY . .
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    set -eu; target=$(cat /target); \
    if [ "$target" = aarch64-unknown-linux-musl ] && [ "$(uname -m)" != aarch64 ]; then \
      export CC_aarch64_unknown_linux_musl=aarch64-linux-gnu-gcc \
             CARGO_TARGET_AARCH64_UNKNOWN_LINUX_MUSL_LINKER=aarch64-linux-gnu-gcc; \
    fi; \
    cargo build --release --locked -p syncret --bin syncret --target "$target"; \
    install -D "target/$target/release/syncret" /out/syncret

FROM gcr.io/distroless/static-debian12:nonroot
LABEL org.opencontainers.image.title="syncret" \
      org.opencontainers.image.description="Keeps Kubernetes Secrets in sync with external secret stores (ESO v1 compatible)" \
      org.opencontainers.image.source="https://github.com/syncret/syncret" \
      org.opencontainers.image.licenses="Apache-2.0"
COPY --from=build /out/syncret /syncret
# distroless "nonroot": uid/gid 65532, as the chart's securityContext.
USER 65532:65532
EXPOSE 8080 8082
ENTRYPOINT ["/syncret"]
