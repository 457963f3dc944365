# Kamailio 5.6 (Debian's kamailio package) with conf/kamailio/kamailio.cfg
# as it is, in front of the pool's two FreeSWITCH (docker/compose.yaml,
# profile pool): round robin over the hosts that answer OPTIONS, failover to
# the next, record-routed. The dispatcher list names the compose services
# fs1 and fs2 (docker/kamailio-dispatcher.list); what else differs per run
# comes from -A defines (conf/kamailio/README.md), which compose passes as
# the command. Build from the repository root:
#
#   docker build -f docker/kamailio.Dockerfile -t eslapp/kamailio:local .

# A Debian 12 image (Kamailio 5.6); .ci/docker-e2e passes one made from
# Debian's packages.
ARG BASE=debian:bookworm-slim
FROM ${BASE}
# The package makes the user kamailio; Kamailio runs as it, with its RPC
# socket (CTL_SOCKET) in /run/kamailio.
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends kamailio \
 && rm -rf /var/lib/apt/lists/* \
 && install -d -o kamailio -g kamailio -m 0750 /run/kamailio
COPY conf/kamailio/kamailio.cfg /etc/kamailio/kamailio.cfg
COPY docker/kamailio-dispatcher.list /etc/kamailio/dispatcher.list
# The file must load, with every module it names, before it is an image.
RUN kamailio -c -f /etc/kamailio/kamailio.cfg -A LISTEN=udp:127.0.0.1:5060
USER kamailio
WORKDIR /run/kamailio
EXPOSE 5060/udp
# Alive while its RPC answers (the dispatcher's state: kamcmd dispatcher.list).
HEALTHCHECK --interval=5s --timeout=3s --start-period=10s --retries=3 \
  CMD kamcmd -s unix:/run/kamailio/kamailio_ctl core.uptime >/dev/null || exit 1
# -DD: in the foreground, the container's main process; -E: the log on
# stderr (the container's output); -m/-M: shared and per-process memory, MB.
ENTRYPOINT ["kamailio", "-DD", "-E", "-m", "64", "-M", "8", "-f", "/etc/kamailio/kamailio.cfg"]
# In a container the interface's address (never 0.0.0.0: README.md).
CMD ["-A", "LISTEN=udp:eth0:5060"]
