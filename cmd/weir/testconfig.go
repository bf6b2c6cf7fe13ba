package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"go.yaml.in/yaml/v3"

	"github.com/weirgw/weir/gateway"
)

// Exit codes of `weir test config`.
const (
	exitValid    = 0
	exitInvalid  = 1
	exitWarnings = 2
)

func newTestCmd(g *globals) *cobra.Command {
	test := &cobra.Command{Use: "test", Short: "Check configuration and outputs"}
	var asJSON bool
	cfg := &cobra.Command{
		Use:   "config",
		Short: "Check the configuration and what it needs of this machine; print it as in force (exit 0 valid, 1 invalid, 2 valid with warnings)",
		Long: `Check the configuration: every key, type and value of the file and of the WEIR_* variables,
then what weir run will need of this machine, without side effects:
  - endpoint names resolve; certificate, key and CA files exist and are readable; they match;
    the certificate chains to the CA, names this gateway's id (urn:weir:gateway:<id>)
    and is valid now (a warning within uplink.cert_expiry_warning);
  - serial devices exist and are character devices (not opened);
  - listen addresses can be bound (bound and released at once);
  - the data directory is, or can be made, writable (nothing is created), and its
    free space is compared with what a full spool takes (about 2 x spool.max_bytes);
  - the admin socket's directory and group, tailed paths, audit and integrity paths,
    ptp4l's socket or the PTP interface.
Each check made is listed, then the configuration in force (secrets redacted).

Exit codes: 0 valid, 1 invalid (the configuration or a check failed), 2 valid with warnings.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if code := runTestConfig(cmd, g, asJSON, time.Now()); code != exitValid {
				return exitStatus(code)
			}
			return nil
		},
	}
	cfg.Flags().BoolVar(&asJSON, "json", false, "print the result as one JSON object (source, status, problems, checks, config)")
	test.AddCommand(cfg, newTestOutputCmd(g), newTestProcessorsCmd(g))
	return test
}

// testConfigReport is `weir test config --json`.
type testConfigReport struct {
	Source   string            `json:"source"`
	File     string            `json:"file,omitempty"`
	Env      []string          `json:"env,omitempty"`
	Status   string            `json:"status"` // valid, invalid or warnings
	ExitCode int               `json:"exit_code"`
	Problems []gateway.Problem `json:"problems,omitempty"`
	Checks   gateway.Checks    `json:"checks,omitempty"`
	Config   map[string]any    `json:"config,omitempty"`
}

// runTestConfig checks the configuration, prints the report and returns
// the exit code.
func runTestConfig(cmd *cobra.Command, g *globals, asJSON bool, now time.Time) int {
	out, errw := cmd.OutOrStdout(), cmd.ErrOrStderr()
	l, err := g.load(cmd)
	if err != nil {
		var ce *gateway.ConfigError
		if !errors.As(err, &ce) {
			ce = &gateway.ConfigError{Problems: []gateway.Problem{{File: g.configPath, Message: strings.TrimPrefix(err.Error(), "config "+g.configPath+": ")}}}
		}
		if asJSON {
			_ = writeJSON(out, testConfigReport{Source: g.configPath, Status: "invalid", ExitCode: exitInvalid, Problems: ce.Problems}, true)
			return exitInvalid
		}
		printProblems(errw, ce.Problems)
		return exitInvalid
	}
	ctx, cancel := context.WithTimeout(cmd.Context(), 10*time.Second)
	defer cancel()
	checks := gateway.Checks{{Key: "configuration", Status: gateway.CheckOK, Detail: "every key, type and value of " + l.Source()}}
	for _, w := range l.Warnings {
		checks = append(checks, gateway.Check{Key: "config file", Status: gateway.CheckWarning, Detail: w})
	}
	switch {
	case l.Bundle != nil:
		checks = append(checks, gateway.Check{Key: "fleet", Status: gateway.CheckOK, Detail: fmt.Sprintf(
			"bundle v%d (signed by key %s) in force, merged over the file: the configuration below is the file with it", l.Bundle.Version, l.Bundle.KeyID)})
	case l.Fleet.Enabled():
		checks = append(checks, gateway.Check{Key: "fleet", Status: gateway.CheckOK, Detail: fmt.Sprintf(
			"remote configuration on (%d keys pinned); no bundle applied: the file alone is in force", len(l.Fleet.Keys))})
	}
	machine, in := gateway.CheckMachine(ctx, l, now)
	checks = append(checks, machine...)
	code, status := exitValid, "valid"
	switch {
	case checks.Count(gateway.CheckError) > 0:
		code, status = exitInvalid, "invalid"
	case checks.Count(gateway.CheckWarning) > 0:
		code, status = exitWarnings, "warnings"
	}
	effective := l.Redacted().Map()
	// What weir run resolves at start is shown as it would be now.
	if in.DataDir != "" {
		effective["data_dir"] = in.DataDir
	}
	if admin, ok := effective["admin"].(map[string]any); ok && in.AdminSocket != "" {
		admin["socket"] = in.AdminSocket
	}
	if asJSON {
		_ = writeJSON(out, testConfigReport{Source: l.Source(), File: l.File, Env: l.Env, Status: status, ExitCode: code, Checks: checks, Config: effective}, true)
		return code
	}
	// The checks are YAML comments: the whole output is a valid
	// configuration file, the one in force.
	printf(out, "# weir test config: %s\n", l.Source())
	for _, c := range checks {
		printf(out, "# %-8s %s: %s\n", c.Status, c.Key, c.Detail)
	}
	printf(out, "# %s\n", summary(checks, code))
	b, err := yaml.Marshal(effective)
	if err != nil {
		printf(errw, "weir: test config: print the configuration: %v\n", err)
		return exitInvalid
	}
	_ = writeText(out, string(b))
	if code == exitInvalid {
		printf(errw, "weir: test config: %s\n", summary(checks, code))
	}
	return code
}

// summary is the last line of the report.
func summary(checks gateway.Checks, code int) string {
	errs, warns := checks.Count(gateway.CheckError), checks.Count(gateway.CheckWarning)
	switch code {
	case exitInvalid:
		return fmt.Sprintf("invalid: %s failed, %s (exit %d)", plural(errs, "check"), plural(warns, "warning"), code)
	case exitWarnings:
		return fmt.Sprintf("valid with %s (exit %d)", plural(warns, "warning"), code)
	}
	return fmt.Sprintf("valid: %s passed (exit %d)", plural(len(checks)-checks.Count(gateway.CheckSkipped), "check"), code)
}

func plural(n int, what string) string {
	if n == 1 {
		return "1 " + what
	}
	return fmt.Sprintf("%d %ss", n, what)
}

// printProblems writes each problem on its own line, as compilers do,
// so that editors can jump to file:line:col.
func printProblems(w io.Writer, ps []gateway.Problem) {
	if len(ps) == 1 {
		printf(w, "weir: config %s\n", ps[0].String())
		return
	}
	printf(w, "weir: config: %d problems:\n", len(ps))
	for _, p := range ps {
		printf(w, "  %s\n", p.String())
	}
}
