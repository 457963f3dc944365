# SIPp (Debian's sip-tester, with pcap play for RFC 2833 keys) to run the
# scenarios of itest/sipp against the harness. Build context: docker/.
ARG DEBIAN_IMAGE=debian:bookworm-slim
FROM ${DEBIAN_IMAGE}
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends sip-tester \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --home-dir /nonexistent --shell /usr/sbin/nologin sipp
USER sipp
WORKDIR /tmp
ENTRYPOINT ["sipp"]
CMD ["-v"]
