# syntax=docker/dockerfile:1
# Portcullis: the proxy, the webhook and the CLI in one static binary on a slim, non-root image.
#
#   docker build -t portcullis:dev .          (or scripts/image.sh)
#
# Stage 1 builds with the same command CI runs and checks (scripts/release-build.sh): the Swift
# standard library and Foundation are linked statically, so stage 2 needs no toolchain.
FROM swift:6.3-bookworm AS build
RUN apt-get update \
    && apt-get install -y --no-install-recommends zlib1g-dev \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
# Package.swift names every target, test targets included, so SwiftPM needs the whole tree (minus
# what .dockerignore leaves out).
COPY . .
RUN scripts/release-build.sh && cp .build/release/portcullis /portcullis && strip /portcullis

# Stage 2: glibc, libstdc++ (BoringSSL), zlib, CA certificates (OIDC issuers, the apiserver), the
# binary, stripped of its debug information (167 MB to 84 MB).
FROM debian:bookworm-slim
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates libstdc++6 zlib1g \
    && rm -rf /var/lib/apt/lists/*
COPY --from=build /portcullis /usr/local/bin/portcullis
# Non-root, and a numeric UID so that `runAsNonRoot` can verify it without /etc/passwd.
USER 65532:65532
ENTRYPOINT ["/usr/local/bin/portcullis"]
CMD ["proxy", "--config", "/etc/portcullis/proxy.yaml"]
