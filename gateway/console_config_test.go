package gateway

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"go.yaml.in/yaml/v3"

	"github.com/weirgw/weir/gateway/console"
)

// A hash of "correct horse battery" at argon2id's lowest costs.
const testHash = "$argon2id$v=19$m=64,t=1,p=1$c29tZXNhbHQxMjM0NTY$0vWjV0Kp3mUoGk6b3tqEw2g0h1T3Yx5yZgJ4xB4y0Kc"

func TestConsoleDefaults(t *testing.T) {
	l, err := Load(filepath.Join(t.TempDir(), "absent.yaml"), false)
	require.NoError(t, err)
	require.Equal(t, console.DefaultConfig(), l.Console, "default.yaml's console block is the package's default")
}

func TestConsoleConfigProblems(t *testing.T) {
	for i, c := range []struct{ body, want string }{
		{"console:\n  max_failures: 0\n", "weir.yaml:2:17: console.max_failures: 0 out of range 1..100"},
		{"console:\n  lockout: 0s\n", "console.lockout: 0s out of range 1s..24h"},
		{"console:\n  idle_timeout: 100ms\n", "console.idle_timeout: 100ms out of range 1s..24h"},
		{"console:\n  failure_delay: 2m\n", "console.failure_delay: 2m0s out of range 0s..1m"},
		{"console:\n  user: \"tech nician\"\n", `console.user: "tech nician" may hold only`},
		{"console:\n  password_hash: \"$argon2id$v=19$m=64,t=1,p=1$c29tZXNhbHQ$tooshort\"\n",
			"weir.yaml:2:18: console.password_hash: argon2id: the hash must be 16 to 64 bytes in unpadded base64 (make one with weir passwd)"},
		{"console:\n  password_hash: hunter2\n", "console.password_hash: not an argon2id PHC string"},
	} {
		t.Run(fmt.Sprint(i), func(t *testing.T) {
			_, err := Load(writeConfig(t, c.body), true)
			require.ErrorContains(t, err, c.want)
			require.NotContains(t, err.Error(), "hunter2", "a hash is never quoted")
			require.NotContains(t, err.Error(), "tooshort", "a hash is never quoted")
		})
	}
}

func TestConsoleHashRedacted(t *testing.T) {
	p := writeConfig(t, "console:\n  password_hash: \""+testHash+"\"\n")
	l, err := Load(p, true)
	require.NoError(t, err)
	require.Equal(t, testHash, l.Console.PasswordHash)
	out, err := yaml.Marshal(l.Redacted().Map())
	require.NoError(t, err)
	require.Contains(t, string(out), "password_hash: <redacted>")
	require.NotContains(t, string(out), "c29tZXNhbHQxMjM0NTY")
	require.Equal(t, testHash, l.Console.PasswordHash, "redaction works on a copy")

	t.Setenv("WEIR_CONSOLE_PASSWORD_HASH", strings.Replace(testHash, "m=64", "m=128", 1))
	l, err = Load(p, true)
	require.NoError(t, err)
	require.Contains(t, l.Console.PasswordHash, "m=128", "the environment can carry the hash")
}

// TestConsoleHashWorldReadableWarns: a hash can be attacked offline, so a
// world-readable file holding one draws the same warning as key material.
func TestConsoleHashWorldReadableWarns(t *testing.T) {
	p := writeConfig(t, "console:\n  password_hash: \""+testHash+"\"\n")
	require.NoError(t, os.Chmod(p, 0o644))
	l, err := Load(p, true)
	require.NoError(t, err)
	require.Len(t, l.Warnings, 1)
	require.Contains(t, l.Warnings[0], "world-readable (mode 0644) and names key material or a password hash")
}
