package gateway

import (
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestEnvironmentPrecedence: a variable wins over the file for the same
// setting in any of its forms, and an empty variable clears.
func TestEnvironmentPrecedence(t *testing.T) {
	const file = `gateway: {id: gw-1}
admin: {group: dialout}
metrics: {listen: "127.0.0.1:9464"}
uplink:
  endpoints: [{address: "a:1"}]
  tls: {ca: /etc/weir/ca.pem, cert: /etc/weir/gw.pem, key: /etc/weir/gw-key.pem}
  window: 8
`
	cases := []struct {
		name  string
		env   []string
		check func(t *testing.T, l *Loaded)
	}{
		{"inline key replaces the file's key path", []string{"WEIR_UPLINK_TLS_KEY_PEM=-----BEGIN PRIVATE KEY-----\nx\n-----END PRIVATE KEY-----\n"},
			func(t *testing.T, l *Loaded) {
				require.Empty(t, l.Uplink.TLS.Key)
				require.Contains(t, l.Uplink.TLS.KeyPEM, "BEGIN PRIVATE KEY")
			}},
		{"key path replaces the file's key path", []string{"WEIR_UPLINK_TLS_KEY=/run/secrets/k.pem"},
			func(t *testing.T, l *Loaded) { require.Equal(t, "/run/secrets/k.pem", l.Uplink.TLS.Key) }},
		{"empty clears text", []string{"WEIR_ADMIN_GROUP=", "WEIR_METRICS_LISTEN="},
			func(t *testing.T, l *Loaded) {
				require.Empty(t, l.Admin.Group)
				require.Empty(t, l.Metrics.Listen, "metrics off")
			}},
		{"numbers and durations as in the file", []string{"WEIR_UPLINK_WINDOW=4", "WEIR_UPLINK_ACK_TIMEOUT=5s", "WEIR_SPOOL_MAX_BYTES=512MiB"},
			func(t *testing.T, l *Loaded) {
				require.Equal(t, 4, l.Uplink.Window)
				require.Equal(t, "5s", l.Uplink.AckTimeout.String())
				require.Equal(t, "512MiB", l.Spool.MaxBytes.String())
			}},
		{"a list", []string{"WEIR_INPUTS_INTEGRITY_PATHS=[/etc, /opt/site]"},
			func(t *testing.T, l *Loaded) {
				require.NotNil(t, l.Inputs.Integrity, "a key of an optional input turns it on")
				require.Equal(t, []string{"/etc", "/opt/site"}, l.Inputs.Integrity.Paths)
			}},
		{"text as it is", []string{`WEIR_GATEWAY_ID=007`},
			func(t *testing.T, l *Loaded) { require.Equal(t, "007", l.Gateway.ID) }},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			for _, kv := range c.env {
				k, v, _ := strings.Cut(kv, "=")
				t.Setenv(k, v)
			}
			l, err := Load(writeConfig(t, file), true)
			require.NoError(t, err)
			c.check(t, l)
			var names []string
			for _, kv := range c.env {
				k, _, _ := strings.Cut(kv, "=")
				names = append(names, k)
			}
			require.ElementsMatch(t, names, l.Env)
		})
	}
}

// TestEnvironmentNames: every key holding one value has one variable,
// and no two keys share one.
func TestEnvironmentNames(t *testing.T) {
	seen := map[string]string{}
	for name, s := range envSettings() {
		require.Equal(t, envName(s.path), name)
		if other, dup := seen[name]; dup {
			t.Fatalf("%s names both %s and %s", name, other, s.path)
		}
		seen[name] = s.path
	}
	require.Equal(t, "uplink.tls.key_pem", seen["WEIR_UPLINK_TLS_KEY_PEM"])
	require.Equal(t, "inputs.syslog.udp.listen", seen["WEIR_INPUTS_SYSLOG_UDP_LISTEN"])
}

// TestREADMEEnvironmentExample runs the README's example as it is
// written: its variables, on a file naming uplink.tls.key and
// admin.group, with the secret's file where the example reads it.
func TestREADMEEnvironmentExample(t *testing.T) {
	b, err := os.ReadFile("../README.md")
	require.NoError(t, err)
	block := regexp.MustCompile("(?s)## Configuration\n.*?```sh\n(.*?)```").FindSubmatch(b)
	require.NotNil(t, block, "README's Configuration section has a sh example")
	cmdline := strings.TrimSpace(string(block[1]))
	assign := regexp.MustCompile(`^([A-Z0-9_]+)=("[^"]*"|\S*)\s+`)
	secret := "-----BEGIN PRIVATE KEY-----\nc2VjcmV0\n-----END PRIVATE KEY-----\n"
	secretFile := writeConfig(t, secret)
	var names []string
	for {
		m := assign.FindStringSubmatch(cmdline)
		if m == nil {
			break
		}
		cmdline = cmdline[len(m[0]):]
		val := strings.Trim(m[2], `"`)
		if f, ok := strings.CutPrefix(val, "$(cat "); ok {
			require.FileExists(t, secretFile, "the example reads %s", strings.TrimSuffix(f, ")"))
			b, err := os.ReadFile(secretFile)
			require.NoError(t, err)
			val = strings.TrimRight(string(b), "\n") // as $( ) gives it
		}
		t.Setenv(m[1], val)
		names = append(names, m[1])
	}
	require.Equal(t, []string{"WEIR_UPLINK_TLS_KEY_PEM", "WEIR_ADMIN_GROUP"}, names)
	require.True(t, strings.HasPrefix(cmdline, "bin/weir run -c weir.yaml"), cmdline)
	l, err := Load(writeConfig(t, `uplink:
  endpoints: [{address: "collector.example.net:7443"}]
  tls: {ca: /etc/weir/ca.pem, cert: /etc/weir/gw.pem, key: /etc/weir/gw-key.pem}
admin: {group: dialout}
`), true)
	require.NoError(t, err)
	require.Empty(t, l.Uplink.TLS.Key, "the file's key path is replaced")
	require.Equal(t, strings.TrimRight(secret, "\n"), l.Uplink.TLS.KeyPEM, "by the key from the secret")
	require.Empty(t, l.Admin.Group, "the empty variable clears admin.group")
}
