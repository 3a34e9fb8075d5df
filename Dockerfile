# mqload image: build with make on Debian bookworm, run on bookworm-slim with only the shared
# libraries mqload links (libev, libbson, libmongoc and what they pull: OpenSSL, SASL, zstd...),
# as a non-root user. mqc itself is linked statically into the binary.
#
#   docker build -t mqload:0.1.0 .
#   docker run --rm -e MQLOAD_URI=mongodb://host:27017 mqload:0.1.0 --preset ycsb-b -d 30s
#
# Kubernetes: deploy/k8s (an Indexed Job of N workers; see docs/mqload/distributed.md).

FROM debian:bookworm AS build
RUN apt-get update \
 && apt-get install -y --no-install-recommends build-essential pkg-config libev-dev libbson-dev \
      libmongoc-dev libssl-dev \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
# Only the tool (not the tests, examples or benchmarks); -O2 -g, then stripped for the image.
RUN make BUILD=/out check-deps /out/mqload \
 && strip /out/mqload \
 && /out/mqload --version

FROM debian:bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends libev4 libbson-1.0-0 libmongoc-1.0-0 ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --system --gid 10001 mqload \
 && useradd --system --uid 10001 --gid mqload --home-dir /home/mqload --create-home --shell /usr/sbin/nologin mqload
COPY --from=build /out/mqload /usr/local/bin/mqload
COPY docs/mqload/mqload.1 /usr/local/share/man/man1/mqload.1
USER 10001:10001
WORKDIR /home/mqload
# Results written with --json go to a mounted volume (deploy/k8s mounts /results).
ENTRYPOINT ["/usr/local/bin/mqload"]
CMD ["--help"]
