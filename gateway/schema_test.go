package gateway

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// goInternals are words of Go, not of the configuration: no message may
// show a Go type, package or function.
var goInternals = regexp.MustCompile(`strconv|reflect|mapstructure|viper|yaml\.|time\.Duration|ByteSize|\bu?int(8|16|32|64)?\b|float(32|64)|\[\]string|map\[|interface ?\{|func\(|\*[a-z]+\.[A-Z]|ParseInt|ParseDuration|Unmarshal|invalid syntax`)

// TestBrokenConfigurations: each broken configuration is refused with
// exactly this message, naming the file, line and column (or the
// variable), the key's full path, the value found and what is expected.
func TestBrokenConfigurations(t *testing.T) {
	const sizes = "a size such as 512MiB or 4GiB, or a number of bytes (units: B, KiB, MiB, GiB, TiB, KB, MB, GB, TB)"
	const durations = "a duration with a unit, such as 250ms, 30s, 5m or 1h (units: ns, us, ms, s, m, h)"
	const topKeys = "top level: found %s, expected a mapping of its keys (gateway, data_dir, telemetry_interval, log, ...)"
	cases := []struct {
		name string
		doc  string
		env  []string // NAME=value
		want string
	}{
		// A scalar or a list where a mapping is expected.
		{"section as a number", "uplink: 5\n",
			nil, "config weir.yaml:1:9: uplink: found 5, expected a mapping of its keys (endpoints, mode, tls, compression, ...)"},
		{"section as a list", "uplink:\n  - address: a:1\n",
			nil, "config weir.yaml:2:3: uplink: found a list of 1 item, expected a mapping of its keys (endpoints, mode, tls, compression, ...)"},
		{"gateway as a list", "gateway: [1, 2]\n",
			nil, "config weir.yaml:1:10: gateway: found a list of 2 items, expected a mapping of its keys (id, memory_limit)"},
		{"nested section as text", "uplink:\n  tls: pki\n",
			nil, `config weir.yaml:2:8: uplink.tls: found "pki", expected a mapping of its keys (ca, cert, key, key_pem)`},
		{"optional input as a number", "inputs: {syslog: 5}\n",
			nil, "config weir.yaml:1:18: inputs.syslog: found 5, expected a mapping of its keys (name, udp, tcp, tls, ...; {} takes every default), or no value for off"},
		{"list as a mapping", "inputs:\n  modbus:\n    buses: {name: a}\n",
			nil, "config weir.yaml:3:12: inputs.modbus.buses: found a mapping (name), expected a list, each item a mapping of keys (name, type, serial, address, ...)"},
		{"list item as a number", "inputs:\n  files: [5]\n",
			nil, "config weir.yaml:2:11: inputs.files[0]: found 5, expected a mapping of its keys (name, paths, start_at, poll_interval, ...)"},
		{"the file a list", "- gateway\n",
			nil, "config weir.yaml:1:1: " + strings.Replace(topKeys, "%s", "a list of 1 item", 1)},
		{"the file one word", "hello\n",
			nil, "config weir.yaml:1:1: " + strings.Replace(topKeys, "%s", `"hello"`, 1)},
		{"key as a list", "? [a]\n: 1\n",
			nil, "config weir.yaml:1:3: top level: found a list of 1 item as a key, expected a key name"},

		// A mapping or a list where one value is expected.
		{"id as a mapping", "gateway:\n  id: {name: pump-3}\n",
			nil, "config weir.yaml:2:7: gateway.id: found a mapping (name), expected text"},
		{"number as a mapping", "uplink:\n  window: {size: 8}\n",
			nil, "config weir.yaml:2:11: uplink.window: found a mapping (size), expected a whole number"},
		{"duration as a list", "telemetry_interval: [1m]\n",
			nil, "config weir.yaml:1:21: telemetry_interval: found a list of 1 item, expected " + durations},
		{"address as a list", "uplink:\n  endpoints:\n    - address: [a, b]\n  tls: {ca: ca.pem, cert: gw.pem, key: gw-key.pem}\n",
			nil, "config weir.yaml:3:16: uplink.endpoints[0].address: found a list of 2 items, expected text"},
		{"text list as text", "inputs:\n  files:\n    - {name: app, paths: /var/log/app.log}\n",
			nil, `config weir.yaml:3:26: inputs.files[0].paths: found "/var/log/app.log", expected a list of text values, such as [/var/log/app.log]`},
		{"text list item as a list", "inputs: {integrity: {paths: [[/etc]]}}\n",
			nil, "config weir.yaml:1:30: inputs.integrity.paths[0]: found a list of 1 item, expected text"},

		// Durations.
		{"duration without a unit", "uplink:\n  flush_interval: 200\n",
			nil, "config weir.yaml:2:19: uplink.flush_interval: found 200 without a unit, expected a duration with a unit, such as 200ms or 200s (units: ns, us, ms, s, m, h)"},
		{"fraction without a unit", "telemetry_interval: 1.5\n",
			nil, "config weir.yaml:1:21: telemetry_interval: found 1.5 without a unit, expected a duration with a unit, such as 1.5ms or 1.5s (units: ns, us, ms, s, m, h)"},
		{"duration in words", "uplink:\n  ack_timeout: 30 seconds\n",
			nil, `config weir.yaml:2:16: uplink.ack_timeout: found "30 seconds", expected ` + durations},
		{"duration as a boolean", "telemetry_interval: true\n",
			nil, "config weir.yaml:1:21: telemetry_interval: found true, expected " + durations},
		{"unit misspelt", "clock:\n  holdover:\n    limit: 15min\n",
			nil, `config weir.yaml:3:12: clock.holdover.limit: found "15min", expected ` + durations},

		// Booleans where numbers are expected, and the reverse.
		{"boolean for a whole number", "uplink:\n  window: true\n",
			nil, "config weir.yaml:2:11: uplink.window: found true, expected a whole number"},
		{"boolean for a number", "clock:\n  holdover: {frequency_uncertainty_ppb: false}\n",
			nil, "config weir.yaml:2:41: clock.holdover.frequency_uncertainty_ppb: found false, expected a number"},
		{"yes for a number", "inputs:\n  files: [{name: a, paths: [/x], max_line_bytes: yes}]\n",
			nil, `config weir.yaml:2:50: inputs.files[0].max_line_bytes: found "yes", expected a whole number`},
		{"yes for a boolean", "inputs:\n  files: [{name: a, paths: [/x], follow_symlinks: yes}]\n",
			nil, `config weir.yaml:2:51: inputs.files[0].follow_symlinks: found "yes", expected true or false`},
		{"number for a boolean", "clock:\n  builtin: {adjust_system_clock: 1}\n",
			nil, "config weir.yaml:2:34: clock.builtin.adjust_system_clock: found 1, expected true or false"},
		{"boolean for text", "log:\n  level: true\n",
			nil, `config weir.yaml:2:10: log.level: found true, expected text; write "true" in quotes if that is meant`},

		// Numbers.
		{"number in quotes", "uplink:\n  window: \"8\"\n",
			nil, `config weir.yaml:2:11: uplink.window: found "8", expected a whole number (without quotes)`},
		{"word for a number", "uplink:\n  window: lots\n",
			nil, `config weir.yaml:2:11: uplink.window: found "lots", expected a whole number`},
		{"fraction for a whole number", "uplink:\n  batch_max_records: 1.5\n",
			nil, "config weir.yaml:2:22: uplink.batch_max_records: found 1.5, expected a whole number"},
		{"number too big", "clock:\n  linuxptp: {domain: 256}\n",
			nil, "config weir.yaml:2:22: clock.linuxptp.domain: found 256, expected a whole number from 0 to 255"},
		{"negative number", "clock:\n  builtin: {domain: -1}\n",
			nil, "config weir.yaml:2:21: clock.builtin.domain: found -1, expected a whole number from 0 to 255"},
		{"size in words", "spool:\n  max_bytes: lots\n",
			nil, `config weir.yaml:2:14: spool.max_bytes: found "lots", expected ` + sizes},
		{"negative size", "spool:\n  max_bytes: -1\n",
			nil, "config weir.yaml:2:14: spool.max_bytes: found -1, expected " + sizes},
		{"fractional size", "gateway:\n  memory_limit: 1.5GiB\n",
			nil, `config weir.yaml:2:17: gateway.memory_limit: found "1.5GiB", expected ` + sizes},

		// Unknown keys, with the nearest known one.
		{"top-level key misspelt", "telemetry_intervl: 1m\n",
			nil, "config weir.yaml:1:1: top level: unknown key `telemetry_intervl`; did you mean `telemetry_interval`?"},
		{"key misspelt", "uplink:\n  windw: 4\n",
			nil, "config weir.yaml:2:3: uplink: unknown key `windw`; did you mean `window`?"},
		{"two near keys", "uplink:\n  reconnect_mix: 1s\n",
			nil, "config weir.yaml:2:3: uplink: unknown key `reconnect_mix`; did you mean `reconnect_min` or `reconnect_max`?"},
		{"another spelling", "Uplink:\n  Flush-Interval: 1s\n",
			nil, "config weir.yaml:2:3: uplink: unknown key `Flush-Interval`; did you mean `flush_interval`?"},
		{"key one level too high", "window: 4\n",
			nil, "config weir.yaml:1:1: top level: unknown key `window`; it belongs in a section here: did you mean `uplink.window`, `rules.rules[].window` or `rules.correlation.window`?"},
		{"key of another section", "uplink:\n  tls: {cert_file: /etc/weir/gw.pem}\n",
			nil, "config weir.yaml:2:9: uplink.tls: unknown key `cert_file`; it belongs in another section: did you mean `inputs.syslog.tls.cert_file`?"},
		{"key belongs in a sub-section", "inputs:\n  lines:\n    - {name: gps, port: {device: /dev/ttyS2}, baud: 9600}\n",
			nil, "config weir.yaml:3:47: inputs.lines[0]: unknown key `baud`; it belongs in a section here: did you mean `port.baud`?"},
		{"key unlike any", "spool:\n  colour: blue\n",
			nil, "config weir.yaml:2:3: spool: unknown key `colour`; the keys here are max_bytes, max_age, profile"},
		{"key given twice", "uplink: {window: 4}\nuplink: {window: 5}\n",
			nil, "config weir.yaml:2:1: top level: `uplink` is given twice (first at line 1); give it once"},
		{"merged mapping checked too", "uplink: {<<: {window: x}}\n",
			nil, `config weir.yaml:1:23: uplink.window: found "x", expected a whole number`},

		// Not YAML.
		{"tab indent", "gateway:\n\tid: pump-3\n",
			nil, "config weir.yaml:2: not valid YAML: found character that cannot start any token (a tab: YAML is indented with spaces only)"},
		{"unclosed list", "uplink: [\n",
			nil, "config weir.yaml:1: not valid YAML: did not find expected node content"},
		{"two documents", "gateway: {id: a}\n---\ngateway: {id: b}\n",
			nil, "config weir.yaml:2:1: a second YAML document (after ---); the configuration is one document"},

		// Values of the right type but wrong, at their line.
		{"gateway id not a name", "gateway:\n  id: pump station/3\n",
			nil, `config weir.yaml:2:7: gateway.id: "pump station/3": character ' ' at offset 4 is not one of A-Z a-z 0-9 . _ -`},
		{"level unknown", "log:\n  level: loud\n",
			nil, `config weir.yaml:2:10: log.level: "loud" is not debug, info, warn or error`},
		{"several at once", "uplink:\n  window: x\n  flush_interval: 200\nlog: {format: xml}\n",
			nil, "config: 3 problems:\n" +
				"  weir.yaml:2:11: uplink.window: found \"x\", expected a whole number\n" +
				"  weir.yaml:3:19: uplink.flush_interval: found 200 without a unit, expected a duration with a unit, such as 200ms or 200s (units: ns, us, ms, s, m, h)\n" +
				"  weir.yaml:4:15: log.format: \"xml\" is not text or json"},

		// The environment: the variable is named instead of a line.
		{"variable not a number", "", []string{"WEIR_UPLINK_WINDOW=lots"},
			`config environment WEIR_UPLINK_WINDOW: uplink.window: found "lots", expected a whole number`},
		{"variable misspelt", "", []string{"WEIR_UPLINK_WINDWO=3"},
			"config environment WEIR_UPLINK_WINDWO: names no configuration key; did you mean `WEIR_UPLINK_WINDOW`?"},
		{"variable duration without a unit", "", []string{"WEIR_UPLINK_FLUSH_INTERVAL=200"},
			"config environment WEIR_UPLINK_FLUSH_INTERVAL: uplink.flush_interval: found 200 without a unit, expected a duration with a unit, such as 200ms or 200s (units: ns, us, ms, s, m, h)"},
		{"variable empty for a number", "", []string{"WEIR_UPLINK_WINDOW="},
			"config environment WEIR_UPLINK_WINDOW: uplink.window: found an empty value, expected a whole number"},
		{"variable for a list of mappings", "", []string{"WEIR_UPLINK_ENDPOINTS=a:1"},
			"config environment WEIR_UPLINK_ENDPOINTS: uplink.endpoints: a list of mappings, written in the configuration file, not in a variable"},
		{"variable for a section", "", []string{"WEIR_UPLINK_TLS=x"},
			"config environment WEIR_UPLINK_TLS: uplink.tls: a section; a variable sets one key in it, such as WEIR_UPLINK_TLS_CA"},
		{"key in two forms", "", []string{"WEIR_UPLINK_TLS_KEY=/etc/weir/k.pem", "WEIR_UPLINK_TLS_KEY_PEM=x"},
			"config environment WEIR_UPLINK_TLS_KEY: uplink.tls.key: WEIR_UPLINK_TLS_KEY and WEIR_UPLINK_TLS_KEY_PEM give one setting twice, in two forms; set one of them"},
		{"variable value wrong", "log: {level: info}\n", []string{"WEIR_LOG_LEVEL=loud"},
			`config environment WEIR_LOG_LEVEL: log.level: "loud" is not debug, info, warn or error`},
	}
	require.GreaterOrEqual(t, len(cases), 40)
	t.Chdir(t.TempDir())
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			require.NoError(t, os.WriteFile("weir.yaml", []byte(c.doc), 0o600))
			for _, kv := range c.env {
				k, v, _ := strings.Cut(kv, "=")
				t.Setenv(k, v)
			}
			_, err := Load("weir.yaml", true)
			require.Error(t, err)
			require.Equal(t, c.want, err.Error(), "configuration:\n%s", c.doc)
			require.NotRegexp(t, goInternals, err.Error())
		})
	}
}

// FuzzLoadConfig: no file, however broken, panics the loader, and every
// refusal is a list of placed problems.
func FuzzLoadConfig(f *testing.F) {
	for _, seed := range []string{"", "uplink: 5\n", "gateway: [1, 2]\n", "a: &a [1, 2]\nb: [*a, *a]\n",
		"inputs: {files: [{name: a, paths: [/x]}], modbus: {buses: [{name: b, serial: {device: /dev/ttyS1}}]}}\n",
		"uplink: {<<: {window: 3}, endpoints: [{address: 'a:1'}]}\n", "? [a]\n: 1\n", "- a\n", "x: !!binary aGk=\n"} {
		f.Add([]byte(seed))
	}
	f.Add(DefaultYAML())
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, b []byte) {
		p := filepath.Join(dir, "weir.yaml")
		require.NoError(t, os.WriteFile(p, b, 0o600))
		_, err := Load(p, true)
		if err == nil {
			return
		}
		var ce *ConfigError
		require.ErrorAs(t, err, &ce)
		require.NotEmpty(t, ce.Problems)
	})
}
