# Builds the memberflow binary (used by docker-compose.yml).
FROM rust:1.95-bookworm AS build
RUN apt-get update && apt-get install -y --no-install-recommends pkg-config libssl-dev libsasl2-dev libzstd-dev zlib1g-dev \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY Cargo.toml Cargo.lock ./
COPY pipeline pipeline
COPY tests tests
COPY queries queries
RUN cargo build --release --bin memberflow

FROM debian:bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends ca-certificates libssl3 libsasl2-2 libzstd1 zlib1g \
    && rm -rf /var/lib/apt/lists/*
COPY --from=build /src/target/release/memberflow /usr/local/bin/memberflow
COPY memberflow.toml /etc/memberflow/memberflow.toml
COPY jobs /etc/memberflow/jobs
WORKDIR /var/lib/memberflow
ENTRYPOINT ["memberflow"]
CMD ["--help"]
