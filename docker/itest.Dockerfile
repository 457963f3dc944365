# SIPp, and Go on the default base, to run the end-to-end tests inside
# FreeSWITCH's network namespace (docker/compose.yaml, service itest). The
# repository is mounted, not copied. Build context: docker/.
#
# BASE is a Debian 12 image: golang's (the default) runs go test in the
# container; a plain Debian one runs a test binary built elsewhere
# (.ci/docker-e2e: go test -c on the host, then that binary in the
# container, with no module download inside it).
ARG BASE=golang:1.26-bookworm
FROM ${BASE}
# SIPp replays a key's RTP from a pcap through a raw socket, which a user
# other than root may open only with CAP_NET_RAW: the file capability gives
# the binary that one (Docker grants NET_RAW to containers by default).
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends sip-tester libcap2-bin \
 && setcap cap_net_raw+ep /usr/bin/sipp \
 && apt-get purge -y --auto-remove libcap2-bin \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --create-home --uid 10001 --shell /usr/sbin/nologin tester \
 && install -d -o tester -g tester /home/tester/.cache
USER tester
ENV GOCACHE=/home/tester/.cache/go-build \
    GOMODCACHE=/home/tester/.cache/gomod \
    GOFLAGS=-buildvcs=false
WORKDIR /src
