// Package conf holds what every package shares about configuration: the
// shipped eslapp.toml (embedded, so that the binary runs on its defaults
// from any directory), FieldError (the one way a package reports a
// configuration problem, by key, for cmd/eslapp to print as FILE:LINE:
// KEY), secret references (${env:NAME}, ${file:PATH}) and the Secret that
// never prints, and KeyLines, which finds the line of every key of a TOML
// document. The FreeSWITCH configuration eslapp ships (conf/freeswitch) is
// data beside it.
//
// It must not decode eslapp's own tables (each package checks its part;
// cmd/eslapp reads the file) and holds no state.
package conf

import _ "embed"

// Default is conf/eslapp.toml as shipped.
//
//go:embed eslapp.toml
var Default string

// DefaultPath is where eslapp looks for its configuration by default.
const DefaultPath = "conf/eslapp.toml"
