# eslapp: a static binary (CGO_ENABLED=0) on a distroless base, as a
# non-root user, with the shipped prompts and the docker configuration.
# Build from the repository root:
#
#   docker build -f docker/eslapp.Dockerfile -t eslapp/eslapp:local .
#
# ESLAPP_BUILD=prebuilt takes a binary built outside the image instead of
# building one on GO_IMAGE (no Go image, no module download in a
# container: .ci/docker-e2e builds on the host, with the host's Go and its
# module cache), and RUNTIME_IMAGE may be any image (a local Debian one):
#
#   CGO_ENABLED=0 go build -trimpath -o docker/prebuilt/eslapp ./cmd/eslapp
#   docker build --build-arg ESLAPP_BUILD=prebuilt --build-arg RUNTIME_IMAGE=IMAGE \
#     -f docker/eslapp.Dockerfile -t eslapp/eslapp:local .

ARG GO_IMAGE=golang:1.26-bookworm
ARG RUNTIME_IMAGE=gcr.io/distroless/static-debian12:nonroot
# source (build in GO_IMAGE) or prebuilt (docker/prebuilt/eslapp).
ARG ESLAPP_BUILD=source

FROM ${GO_IMAGE} AS source
WORKDIR /src
COPY go.mod go.sum ./
RUN --mount=type=cache,target=/go/pkg/mod go mod download
COPY . .
ARG VERSION=docker
RUN --mount=type=cache,target=/go/pkg/mod --mount=type=cache,target=/root/.cache/go-build \
    CGO_ENABLED=0 go build -buildvcs=false -trimpath \
      -ldflags "-s -w -X main.version=${VERSION}" -o /out/eslapp ./cmd/eslapp

FROM scratch AS prebuilt
COPY docker/prebuilt/eslapp /out/eslapp

FROM ${ESLAPP_BUILD} AS binary

# The configuration must pass eslapp check, sounds included, at the paths
# the image uses. The check resolves the ${env:...} references of
# eslapp.toml: the password is the operator's, given at run time, so this
# stage, which is not the image, sets a stand-in. The image copies what
# passed from here, so the check cannot be skipped.
FROM ${RUNTIME_IMAGE} AS check
COPY --from=binary /out/eslapp /usr/local/bin/eslapp
COPY sounds/8000/ /usr/share/eslapp/sounds/8000/
COPY sounds/16000/ /usr/share/eslapp/sounds/16000/
COPY docker/eslapp.toml docker/eslapp-pool.toml /etc/eslapp/
ENV FREESWITCH_ESL_PASSWORD=stand-in-for-eslapp-check
# Exec form: the distroless base has no shell.
RUN ["/usr/local/bin/eslapp", "check", "-config", "/etc/eslapp/eslapp.toml"]
RUN ["/usr/local/bin/eslapp", "check", "-config", "/etc/eslapp/eslapp-pool.toml"]

FROM ${RUNTIME_IMAGE}
COPY --from=check /usr/local/bin/eslapp /usr/local/bin/eslapp
COPY --from=check /usr/share/eslapp/sounds/ /usr/share/eslapp/sounds/
COPY --from=check /etc/eslapp/ /etc/eslapp/
# distroless's "nonroot" user, by number: the same on any base.
USER 65532:65532
WORKDIR /usr/share/eslapp
# 8084: FreeSWITCH's socket application; 9184: /metrics.
EXPOSE 8084 9184
ENTRYPOINT ["/usr/local/bin/eslapp"]
CMD ["serve", "-config", "/etc/eslapp/eslapp.toml"]
