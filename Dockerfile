# The LeanNodes image: the `leannodes` binary with the dashboard embedded, on distroless (no shell, no
# package manager), as the non-root user 65532. Build from the repository root:
#
#   docker build -t leannodes:dev .
#
# The chart (deploy/helm/leannodes) runs /usr/local/bin/leannodes as user 65532; tests/helm.rs checks
# that this file and the chart agree, and lints this file with hadolint.

# The dashboard (web/), built by Vite into web/dist.
FROM node:20-bookworm-slim AS dashboard
WORKDIR /src/web
COPY web/package.json web/package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY web/ ./
RUN npx vite build

# The binary, with web/dist embedded at compile time (rust-embed in api/).
FROM rust:1.95-bookworm AS build
SHELL ["/bin/bash", "-o", "pipefail", "-c"]
# cmake: pingora's zlib-ng; clang/libclang: bindgen; libxmlsec1 and libxml2: SAML sign-in (samael).
# hadolint ignore=DL3008
RUN apt-get update \
 && apt-get install -y --no-install-recommends cmake clang libclang-dev libxmlsec1-dev libxml2-dev libssl-dev pkg-config \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
COPY --from=dashboard /src/web/dist web/dist
RUN cargo build --release --locked --bin leannodes \
 && install -D -m 0755 target/release/leannodes /out/leannodes \
 && strip /out/leannodes
# The shared libraries the binary links beyond what distroless/cc brings (glibc, libgcc): libxmlsec1,
# libxml2, libxslt and their own dependencies, from the same Debian release.
RUN mkdir -p /out/lib \
 && ldd /out/leannodes | awk '$3 ~ /^\// {print $3}' \
  | grep -v -E '/(libc|libm|libdl|libpthread|librt|libgcc_s|ld-linux[^/]*)\.so' \
  | xargs -r -I{} cp -L {} /out/lib/

# The runtime: no shell, so no RUN here.
FROM gcr.io/distroless/cc-debian12:nonroot AS runtime
COPY --from=build /out/lib/ /usr/local/lib/leannodes/
COPY --from=build /out/leannodes /usr/local/bin/leannodes
ENV LD_LIBRARY_PATH=/usr/local/lib/leannodes \
    LEANNODES_LOG_FORMAT=json
USER 65532:65532
# Proxy, TLS, admin (API, dashboard, /metrics, /healthz, /readyz), /check, ext_authz.
EXPOSE 8080 8443 9090 9095 9191
ENTRYPOINT ["/usr/local/bin/leannodes"]
CMD ["serve", "--config", "/etc/leannodes/leannodes.toml"]
