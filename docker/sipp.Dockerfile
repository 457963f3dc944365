# SIPp (Debian's sip-tester, with pcap play for RFC 2833 keys) to run the
# scenarios of itest/sipp against the harness. Build context: docker/.
#
# A Debian 12 image; .ci/docker-e2e passes one made from Debian's packages.
ARG BASE=debian:bookworm-slim
FROM ${BASE}
# SIPp replays a key's RTP from a pcap through a raw socket, which a user
# other than root may open only with CAP_NET_RAW: the file capability gives
# the binary that one (Docker grants NET_RAW to containers by default).
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends sip-tester libcap2-bin \
 && setcap cap_net_raw+ep /usr/bin/sipp \
 && apt-get purge -y --auto-remove libcap2-bin \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --home-dir /nonexistent --shell /usr/sbin/nologin sipp
USER sipp
WORKDIR /tmp
ENTRYPOINT ["sipp"]
CMD ["-v"]
