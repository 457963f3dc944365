// Package conf holds eslapp's shipped configuration. The binary embeds
// eslapp.toml so that it runs on these defaults from any directory.
package conf

import _ "embed"

// Default is conf/eslapp.toml as shipped.
//
//go:embed eslapp.toml
var Default string

// DefaultPath is where eslapp looks for its configuration by default.
const DefaultPath = "conf/eslapp.toml"
