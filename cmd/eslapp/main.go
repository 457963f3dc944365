// Command eslapp runs CRM workflows for FreeSWITCH calls — the Workflow
// Execute step of contact-center IVRs — over FreeSWITCH's Event Socket: a
// call's own outbound socket, or socket-less over inbound connections.
//
//	eslapp [serve] [-config FILE]   accept calls (the default; serve.go)
//	eslapp check   [-config FILE]   check a configuration and exit (check.go)
//	eslapp graph   ...              draw a flow (graph.go)
//	eslapp try     ...              run one call without a phone (try.go)
//	eslapp version                  print the version
//
// This package is wiring: flags, the configuration (config.go, build.go),
// signals, and the generation of packages' values that serve, reload and
// try share (generation.go). What a call does lives in the packages.
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"os"
	"runtime/debug"
	"strings"

	"github.com/eslapp/eslapp/conf"
	"github.com/eslapp/eslapp/esl"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = ""

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr, runHooks{}))
}

// runHooks let tests drive serve without real signals or a fixed port.
type runHooks struct {
	ready   chan<- net.Addr  // receives the listener's address once serve accepts calls
	signals <-chan os.Signal // replaces SIGTERM/SIGINT/SIGHUP delivery
	handler esl.Handler      // replaces the call handler
}

const usage = `usage: eslapp [serve|check|version] [-config FILE]
       eslapp graph [-config FILE] [-flow NAME] [-format mermaid|dot|svg]
       eslapp try [-config FILE] (-flow NAME | -dialplan VARS.toml) [-var K=V ...] [-crm fixture|live] [-expect BRANCH] [-socketless]
`

// run is main with its inputs made explicit, for tests.
func run(args []string, stdout, stderr io.Writer, hooks runHooks) int {
	cmd := "serve"
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		cmd, args = args[0], args[1:]
	}
	switch cmd {
	case "graph":
		return graphCmd(args, stdout, stderr)
	case "try":
		return tryCmd(args, stdout, stderr)
	}
	flags := flag.NewFlagSet("eslapp "+cmd, flag.ContinueOnError)
	flags.SetOutput(stderr)
	configPath := flags.String("config", conf.DefaultPath, "configuration `file`")
	flags.Usage = func() {
		fmt.Fprint(stderr, usage)
		flags.PrintDefaults()
	}
	switch cmd {
	case "serve", "check", "version":
	case "help", "-h", "--help":
		flags.Usage()
		return 0
	default:
		fmt.Fprintf(stderr, "eslapp: unknown command %q\n", cmd)
		flags.Usage()
		return 2
	}
	if err := flags.Parse(args); err != nil {
		return 2
	}
	explicit := configGiven(flags)
	switch cmd {
	case "version":
		fmt.Fprintln(stdout, "eslapp", versionString())
		return 0
	case "check":
		return checkCmd(*configPath, explicit, stdout, stderr)
	}
	return serve(*configPath, explicit, stderr, hooks)
}

// configGiven reports whether -config was on the command line.
func configGiven(flags *flag.FlagSet) bool {
	given := false
	flags.Visit(func(f *flag.Flag) { given = given || f.Name == "config" })
	return given
}

// load reads the configuration. Without -config, a missing conf/eslapp.toml
// is not an error: the copy embedded in the binary is used.
func load(path string, explicit bool) (*source, error) {
	if _, err := os.Stat(path); !explicit && errors.Is(err, fs.ErrNotExist) {
		return parseSource("embedded "+conf.DefaultPath, conf.Default, ".")
	}
	return readConfig(path)
}

// newLogger logs to w at the configured level and format. The level is
// level's, which a reload may change.
func newLogger(w io.Writer, s *Settings, level *slog.LevelVar) *slog.Logger {
	setLogLevel(level, s.LogLevel)
	opts := &slog.HandlerOptions{Level: level}
	if s.LogJSON {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

func setLogLevel(v *slog.LevelVar, name string) {
	var level slog.Level
	_ = level.UnmarshalText([]byte(name))
	v.Set(level)
}

func versionString() string {
	if version != "" {
		return version
	}
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		return bi.Main.Version
	}
	return "devel"
}
