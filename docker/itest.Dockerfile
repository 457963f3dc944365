# Go and SIPp, to run the end-to-end tests (go test -tags integration
# ./itest/) inside FreeSWITCH's network namespace (docker/compose.yaml,
# service itest). The repository is mounted, not copied. Build context:
# docker/.
ARG GO_IMAGE=golang:1.26-bookworm
FROM ${GO_IMAGE}
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends sip-tester \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --create-home --uid 10001 --shell /usr/sbin/nologin tester \
 && install -d -o tester -g tester /home/tester/.cache
USER tester
ENV GOCACHE=/home/tester/.cache/go-build \
    GOMODCACHE=/home/tester/.cache/gomod \
    GOFLAGS=-buildvcs=false
WORKDIR /src
