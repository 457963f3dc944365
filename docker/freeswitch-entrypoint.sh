#!/bin/sh
# Entry point of the eslapp FreeSWITCH image: refuses to start the inbound
# Event Socket without a password of the operator's choosing, then runs the
# command (FreeSWITCH by default).
set -eu

case "${FREESWITCH_ESL_PASSWORD:-}" in
"")
	echo "freeswitch-entrypoint: set FREESWITCH_ESL_PASSWORD, the inbound Event Socket password (for example: openssl rand -hex 16)" >&2
	exit 64
	;;
ClueCon)
	echo "freeswitch-entrypoint: FREESWITCH_ESL_PASSWORD is FreeSWITCH's well-known default; choose another" >&2
	exit 64
	;;
esac

exec "$@"
