# Builds the tierkv binary; used by compose.yaml.
FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --bin tierkv

FROM debian:bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends ca-certificates curl && rm -rf /var/lib/apt/lists/*
COPY --from=build /src/target/release/tierkv /usr/local/bin/tierkv
VOLUME /data
EXPOSE 8080
ENTRYPOINT ["tierkv"]
CMD ["serve", "--listen", "0.0.0.0:8080", "--data-dir", "/data"]
