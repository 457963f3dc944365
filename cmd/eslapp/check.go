package main

import (
	"fmt"
	"io"

	"github.com/eslapp/eslapp/esl"
)

// checkCmd is eslapp check: the configuration read and built as serve
// would (every problem printed, FILE:LINE: KEY: message), then, with
// [socketless] enabled, a login to each FreeSWITCH event socket it names.
// Exit 1 when the configuration has a problem.
func checkCmd(configPath string, explicit bool, stdout, stderr io.Writer) int {
	src, err := load(configPath, explicit)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	b, err := src.build(nil, nil)
	if b != nil && b.warnings != nil {
		fmt.Fprintln(stderr, b.warnings)
	}
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	b.close()
	fmt.Fprintf(stdout, "%s: ok\n", src.name)
	if sl := src.set.Socketless; sl != nil {
		// Each connection's state, for the operator: not a configuration
		// error (FreeSWITCH may start later; eslapp keeps trying, and
		// calls go by the dialplan's nets meanwhile).
		for _, h := range sl.Hosts {
			if err := esl.CheckInbound(h.Address, h.Password.Reveal(), src.set.CommandTimeout); err != nil {
				fmt.Fprintf(stdout, "socket-less: FreeSWITCH's event socket at %s: not usable: %v\n", h.Address, err)
			} else {
				fmt.Fprintf(stdout, "socket-less: FreeSWITCH's event socket at %s: logged in\n", h.Address)
			}
		}
	}
	return 0
}
