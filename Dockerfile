# syntax=docker/dockerfile:1
# Multi-stage build: a static binary in a distroless image, run as non-root.

FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
# Production images leave the embedded database (FerretDB over SQLite) out and
# need DATABASE_URL; build with --build-arg GO_TAGS= to keep it (it is pure Go,
# no cgo either way).
ARG GO_TAGS=noembedded
RUN CGO_ENABLED=0 go build -tags "$GO_TAGS" -trimpath -ldflags="-s -w" -o /out/gqlauth . \
 && mkdir -p /out/data

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/gqlauth /usr/local/bin/gqlauth
COPY --from=build --chown=nonroot:nonroot /out/data /data
# An image runs in production by default: Secure cookies, no playground or
# introspection, bcrypt cost of at least 10, /metrics only on METRICS_ADDR,
# and it refuses to start without JWT_PRIVATE_KEY/JWT_PUBLIC_KEY (a key
# generated per container would make replicas refuse each other's tokens).
# Set APP_ENV=development to try it locally without keys.
ENV APP_ENV=production \
    HOST=0.0.0.0 \
    PORT=8000 \
    DATA_DIR=/data
USER nonroot:nonroot
EXPOSE 8000
VOLUME ["/data"]
HEALTHCHECK --interval=10s --timeout=3s --start-period=10s --retries=3 CMD ["/usr/local/bin/gqlauth", "healthcheck"]
ENTRYPOINT ["/usr/local/bin/gqlauth"]
