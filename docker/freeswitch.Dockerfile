# FreeSWITCH 1.10 with the modules eslapp needs and the harness
# configuration (conf/freeswitch), from one of two sources:
#
# FS_SOURCE=packages (the default): SignalWire's official Debian packages.
# Their repository needs a personal access token (a free signalwire.com
# account: Personal Access Tokens, "pat_..."). It is passed as a BuildKit
# secret, is read only inside one RUN, and is in no layer:
#
#   export SIGNALWIRE_TOKEN=pat_...
#   docker build --secret id=signalwire_token,env=SIGNALWIRE_TOKEN \
#     -f docker/freeswitch.Dockerfile -t eslapp/freeswitch:local .
#
# FS_SOURCE=kit: a FreeSWITCH already built for Debian 12 under the prefix
# /opt/freeswitch (the tarball the project's CI tests on), given as an
# image whose /freeswitch is that tree, made with docker import: no token,
# no network but Debian's packages, and nothing copied into a build context.
#
#   docker import freeswitch-1.10.12-bookworm-amd64.tar.xz eslapp/freeswitch-kit:1.10.12
#   docker build --build-arg FS_SOURCE=kit --build-arg FS_KIT_IMAGE=eslapp/freeswitch-kit:1.10.12 \
#     -f docker/freeswitch.Dockerfile -t eslapp/freeswitch:local .
#
# (docker compose -f docker/compose.yaml build does the first.) Build from
# the repository root: the image copies conf/freeswitch and sounds/.

# A Debian 12 image; .ci/docker-e2e passes one made from Debian's packages.
ARG BASE=debian:bookworm-slim
# packages or kit (above).
ARG FS_SOURCE=packages
# With FS_SOURCE=kit: the image holding the kit's tree as /freeswitch. The
# stage that reads it is built only for the kit.
ARG FS_KIT_IMAGE=scratch

FROM ${FS_KIT_IMAGE} AS kit-tree

FROM ${BASE} AS common
SHELL ["/bin/bash", "-o", "pipefail", "-c"]
# The service user exists before FreeSWITCH, with a fixed id, so that files
# on mounted volumes keep one owner.
RUN groupadd --system --gid 999 freeswitch \
 && useradd --system --uid 999 --gid freeswitch --home-dir /var/lib/freeswitch \
      --no-create-home --shell /usr/sbin/nologin freeswitch

FROM common AS packages
# debian-release (FreeSWITCH's stable packages) or debian-unstable.
ARG FS_REPO=debian-release
# The prompts mod_say_en reads (digits/, currency/). The meta package builds
# every rate; freeswitch-sounds-en-us-callie-8000 alone is much smaller and
# enough for G.711 calls.
ARG FS_SOUNDS=freeswitch-sounds-en-us-callie
# One RUN: the token is written to apt's auth file, used for the key and the
# packages, and removed before the layer is committed, with the repository
# entry that would need it again.
RUN --mount=type=secret,id=signalwire_token,required=true \
    set -eu; \
    export DEBIAN_FRONTEND=noninteractive; \
    token="$(tr -d '\r\n' < /run/secrets/signalwire_token)"; \
    if [ -z "$token" ]; then echo "the signalwire_token secret is empty" >&2; exit 1; fi; \
    . /etc/os-release; \
    apt-get update; \
    apt-get install -y --no-install-recommends ca-certificates curl; \
    install -d -m 0755 /etc/apt/auth.conf.d; \
    umask 077; \
    printf 'machine freeswitch.signalwire.com login signalwire password %s\n' "$token" \
      > /etc/apt/auth.conf.d/signalwire.conf; \
    unset token; \
    umask 022; \
    curl --fail --silent --show-error --location \
      --netrc-file /etc/apt/auth.conf.d/signalwire.conf \
      -o /usr/share/keyrings/signalwire-freeswitch-repo.gpg \
      "https://freeswitch.signalwire.com/repo/deb/${FS_REPO}/signalwire-freeswitch-repo.gpg"; \
    echo "deb [signed-by=/usr/share/keyrings/signalwire-freeswitch-repo.gpg] https://freeswitch.signalwire.com/repo/deb/${FS_REPO}/ ${VERSION_CODENAME} main" \
      > /etc/apt/sources.list.d/freeswitch.list; \
    apt-get update; \
    apt-get install -y --no-install-recommends \
      freeswitch \
      freeswitch-mod-console \
      freeswitch-mod-event-socket \
      freeswitch-mod-sofia \
      freeswitch-mod-commands \
      freeswitch-mod-dptools \
      freeswitch-mod-dialplan-xml \
      freeswitch-mod-sndfile \
      freeswitch-mod-tone-stream \
      freeswitch-mod-local-stream \
      freeswitch-mod-ssml \
      freeswitch-mod-flite \
      freeswitch-mod-say-en \
      "${FS_SOUNDS}"; \
    rm -f /etc/apt/auth.conf.d/signalwire.conf /etc/apt/sources.list.d/freeswitch.list; \
    apt-get purge -y --auto-remove curl; \
    apt-get clean; \
    rm -rf /var/lib/apt/lists/* /etc/freeswitch

FROM common AS kit
COPY --from=kit-tree /freeswitch/ /opt/freeswitch/
# The Debian libraries the kit links against (its install script's list).
# Every module must load: a library missing here would only show as a
# module FreeSWITCH skips at start, so the build fails on it instead.
RUN set -eu; \
    export DEBIAN_FRONTEND=noninteractive; \
    apt-get update; \
    apt-get install -y --no-install-recommends \
      libflite1 libfreetype6 libopus0 libpcre3 libsndfile1 libspeex1 libspeexdsp1 \
      libcurl4 libedit2 libsqlite3-0 libtiff6 libjpeg62-turbo libssl3 libuuid1; \
    apt-get clean; \
    rm -rf /var/lib/apt/lists/*; \
    missing="$(ldd /opt/freeswitch/bin/freeswitch /opt/freeswitch/bin/fs_cli \
      /opt/freeswitch/lib/freeswitch/mod/*.so | grep 'not found' || true)"; \
    if [ -n "$missing" ]; then echo "the kit needs libraries this image lacks:"; echo "$missing"; exit 1; fi; \
    ln -s /opt/freeswitch/bin/freeswitch /opt/freeswitch/bin/fs_cli /usr/local/bin/; \
    freeswitch -version

# FS_SOURCE's stage, then what both have in common.
FROM ${FS_SOURCE}
RUN install -d -o freeswitch -g freeswitch -m 0750 \
      /var/lib/freeswitch /var/lib/freeswitch/db /var/lib/freeswitch/storage \
      /var/lib/freeswitch/recordings /var/log/freeswitch /var/cache/freeswitch \
      /run/freeswitch

# The configuration and eslapp's prompts, at the path eslapp's [sounds] dir
# names (docker/eslapp.toml). docker/compose.yaml mounts both from the
# working tree over these copies.
COPY conf/freeswitch/ /etc/freeswitch/
COPY sounds/8000/ /usr/share/eslapp/sounds/8000/
COPY sounds/16000/ /usr/share/eslapp/sounds/16000/
# The hold-music stream eslapp_hold (conf/freeswitch local_stream.conf.xml).
COPY sounds/hold/ /usr/share/eslapp/sounds/hold/
COPY --chmod=0755 docker/freeswitch-entrypoint.sh /usr/local/bin/freeswitch-entrypoint

USER freeswitch
WORKDIR /var/lib/freeswitch

# SIP (profile "eslapp"), the inbound Event Socket, RTP.
EXPOSE 5080/udp 5080/tcp 8021/tcp 16384-32768/udp

HEALTHCHECK --interval=10s --timeout=5s --start-period=30s --retries=3 \
  CMD fs_cli -H 127.0.0.1 -P "${FREESWITCH_ESL_PORT:-8021}" -p "$FREESWITCH_ESL_PASSWORD" -x status | grep -q '^UP' || exit 1

ENTRYPOINT ["/usr/local/bin/freeswitch-entrypoint"]
# -c keeps FreeSWITCH in the foreground with its log on the console (the
# container's output); give the container a terminal (compose: tty: true).
# The directories are the packages' own, named so that the kit (built for
# /opt/freeswitch) uses them too.
CMD ["freeswitch", "-nonat", "-nonatmap", "-c", \
     "-conf", "/etc/freeswitch", "-log", "/var/log/freeswitch", \
     "-db", "/var/lib/freeswitch/db", "-run", "/run/freeswitch", \
     "-storage", "/var/lib/freeswitch/storage", "-recordings", "/var/lib/freeswitch/recordings", \
     "-cache", "/var/cache/freeswitch"]
