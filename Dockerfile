# Multi-stage build of the `huzhu` binary.
FROM rust:1.95-slim-bookworm AS build
WORKDIR /src
RUN apt-get update && apt-get install -y --no-install-recommends cmake clang pkg-config && rm -rf /var/lib/apt/lists/*
COPY . .
RUN cargo build --release --locked -p huzhu-api --bin huzhu \
 && cp target/release/huzhu /usr/local/bin/huzhu

FROM debian:bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends ca-certificates curl tzdata \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --home /var/lib/huzhu huzhu \
 && mkdir -p /var/lib/huzhu && chown huzhu /var/lib/huzhu
COPY --from=build /usr/local/bin/huzhu /usr/local/bin/huzhu
USER huzhu
WORKDIR /var/lib/huzhu
ENV HUZHU_LISTEN=0.0.0.0:8080 \
    HUZHU_DATA_DIR=/var/lib/huzhu \
    TZ=Asia/Shanghai
EXPOSE 8080
HEALTHCHECK --interval=10s --timeout=3s --retries=6 CMD curl -fsS http://127.0.0.1:8080/readyz || exit 1
ENTRYPOINT ["huzhu"]
CMD ["serve"]
