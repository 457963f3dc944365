# syntax=docker/dockerfile:1
#
# eslapp: a static binary (CGO_ENABLED=0) on a distroless base, as a
# non-root user, with the shipped prompts and the docker configuration.
# Build from the repository root:
#
#   docker build -f docker/eslapp.Dockerfile -t eslapp/eslapp:local .

ARG GO_IMAGE=golang:1.26-bookworm
ARG RUNTIME_IMAGE=gcr.io/distroless/static-debian12:nonroot

FROM ${GO_IMAGE} AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN --mount=type=cache,target=/go/pkg/mod go mod download
COPY . .
ARG VERSION=docker
RUN --mount=type=cache,target=/go/pkg/mod --mount=type=cache,target=/root/.cache/go-build \
    CGO_ENABLED=0 go build -buildvcs=false -trimpath \
      -ldflags "-s -w -X main.version=${VERSION}" -o /out/eslapp ./cmd/eslapp
# The configuration must pass eslapp check, sounds included, at the paths
# the image uses.
RUN install -d /usr/share/eslapp \
 && cp -r sounds /usr/share/eslapp/sounds \
 && /out/eslapp check -config docker/eslapp.toml

FROM ${RUNTIME_IMAGE}
COPY --from=build /out/eslapp /usr/local/bin/eslapp
COPY sounds/8000/ /usr/share/eslapp/sounds/8000/
COPY sounds/16000/ /usr/share/eslapp/sounds/16000/
COPY docker/eslapp.toml /etc/eslapp/eslapp.toml
# distroless's "nonroot" user (65532).
USER nonroot:nonroot
WORKDIR /usr/share/eslapp
# 8084: FreeSWITCH's socket application; 9184: /metrics.
EXPOSE 8084 9184
ENTRYPOINT ["/usr/local/bin/eslapp"]
CMD ["serve", "-config", "/etc/eslapp/eslapp.toml"]
