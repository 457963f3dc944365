package esl

import (
	"net"
	_ "unsafe" // for go:linkname

	"github.com/percipia/eslgo"
)

// eslgoNewConn builds an eslgo connection over a net.Conn that eslapp
// accepted itself.
//
// eslgo v1.4.1 (the version this module pins, and the only one our module
// proxy serves) creates outbound connections only inside ListenAndServe,
// which owns its listener: it cannot be stopped, cannot report the port of
// ":0", and accepts every peer before the application sees it. The
// constructor it uses internally, newConnection, takes any net.Conn. Linking
// to it lets the server own the listener (source allowlist before a byte is
// read, a drain that can stop, tests on ephemeral ports) and hand eslgo a
// connection wrapped by wireConn, which is how eslapp notices a TCP drop that
// eslgo ignores. TestEslgoLink pins the behaviour this relies on.
//
//go:linkname eslgoNewConn github.com/percipia/eslgo.newConnection
func eslgoNewConn(c net.Conn, outbound bool, opts eslgo.Options) *eslgo.Conn
