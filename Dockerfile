# The sluice binary, built with the `dist` profile (fat LTO) and run on a small base image as a
# non-root user; deploy/sluice.yaml runs it as `controller` and as `dataplane`.
# Not built in CI here (no container engine on the development machines).
FROM rust:1-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --profile dist --locked --bin sluice

FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /src/target/dist/sluice /usr/local/bin/sluice
USER nonroot
ENTRYPOINT ["/usr/local/bin/sluice"]
