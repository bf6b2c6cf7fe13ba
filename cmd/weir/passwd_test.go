package main

import (
	"bytes"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/weirgw/weir/gateway/console"
)

func runPasswd(t *testing.T, stdin string, args ...string) (string, error) {
	t.Helper()
	root := newRoot()
	var out bytes.Buffer
	root.SetIn(strings.NewReader(stdin))
	root.SetOut(&out)
	root.SetErr(&out)
	root.SetArgs(append([]string{"passwd"}, args...))
	err := root.Execute()
	return out.String(), err
}

func TestPasswd(t *testing.T) {
	if testing.Short() {
		t.Skip("hashes at the default costs; skipped with -short")
	}
	out, err := runPasswd(t, "field tech 2026\n", "--stdin")
	require.NoError(t, err)
	h := strings.TrimSpace(out)
	require.True(t, strings.HasPrefix(h, "$argon2id$v=19$m=65536,t=3,p=4$"), h)
	p, err := console.ParseHash(h)
	require.NoError(t, err)
	require.True(t, p.Verify([]byte("field tech 2026")), "the line end is not part of the password")

	out, err = runPasswd(t, "field tech 2026\r\n", "--stdin", "--algorithm", "bcrypt")
	require.NoError(t, err)
	p, err = console.ParseHash(strings.TrimSpace(out))
	require.NoError(t, err)
	require.Equal(t, console.Bcrypt, p.Algorithm())
	require.True(t, p.Verify([]byte("field tech 2026")))
}

func TestPasswdRefuses(t *testing.T) {
	for _, c := range []struct {
		stdin string
		args  []string
		want  string
	}{
		{"short\n", []string{"--stdin"}, "5 characters; want at least 8"},
		{"\n", []string{"--stdin"}, "0 characters"},
		{strings.Repeat("x", 2000) + "\n", []string{"--stdin"}, "longer than 1024 bytes"},
		{strings.Repeat("x", 100) + "\n", []string{"--stdin", "--algorithm", "bcrypt"}, "bcrypt takes at most 72 bytes"},
		{"long enough\n", []string{"--stdin", "--algorithm", "md5"}, `--algorithm "md5": want argon2id or bcrypt`},
		{"long enough\n", nil, "stdin is not a terminal; use --stdin"},
	} {
		_, err := runPasswd(t, c.stdin, c.args...)
		require.ErrorContains(t, err, c.want)
	}
}
