// Package itest is eslapp's real-call harness: SIPp scenarios (sipp/) and
// end-to-end tests that call a real FreeSWITCH configured from
// conf/freeswitch, with eslapp running on a test configuration and a test
// CRM, and read each call's outcome back from FreeSWITCH over the inbound
// Event Socket.
//
// The end-to-end tests carry the build tag integration and need a
// FreeSWITCH:
//
//	ESLAPP_FS_SIP=172.28.84.10:5080 ESLAPP_FS_ESL=127.0.0.1:8021 \
//	ESLAPP_FS_ESL_PASSWORD=... go test -tags integration -v ./itest/
//
// Without the tag, go test ./itest checks what needs no FreeSWITCH: the
// scenarios against a SIPp stand-in on loopback (when SIPp is installed),
// the FreeSWITCH configuration tree as FreeSWITCH's preprocessor reads it,
// and docker/eslapp.toml. See itest/README.md.
//
// It must not be imported by eslapp's packages, and its tests assert no
// speed: what it measures goes to BENCHMARKS.md through itest/pbxcost,
// itest/load, itest/pool and itest/hear. The durations they do assert are
// the product's promises to callers, with their margins: the pool's nets
// route a call within the step's bound plus 2 s, a peer takes a call
// within 1 s, the caller hears audio within about 1 s (TestPool,
// TestCallerHears).
package itest
