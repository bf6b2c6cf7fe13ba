package main

import (
	"bytes"
	"cmp"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"go.yaml.in/yaml/v3"

	"github.com/weirgw/weir/gateway"
	"github.com/weirgw/weir/sensors/audit"
	"github.com/weirgw/weir/sensors/integrity"
	"github.com/weirgw/weir/sensors/syslog"
)

func runConfigExample(t *testing.T, args ...string) (string, error) {
	t.Helper()
	c := newConfigCmd(&globals{})
	var out bytes.Buffer
	c.SetOut(&out)
	c.SetErr(&out)
	c.SetArgs(append([]string{"example"}, args...))
	err := c.Execute()
	return out.String(), err
}

// TestConfigExampleInputs: each optional input's example, put under its
// key, is a valid configuration turning that input on with exactly the
// package's defaults, as the examples say.
func TestConfigExampleInputs(t *testing.T) {
	cases := []struct {
		name string
		want func(*gateway.Config) any
		def  any
	}{
		{"syslog", func(c *gateway.Config) any { return c.Inputs.Syslog }, new(syslog.DefaultConfig())},
		{"audit", func(c *gateway.Config) any { return c.Inputs.Audit }, new(audit.DefaultConfig())},
		{"integrity", func(c *gateway.Config) any {
			if c.Inputs.Integrity != nil && len(c.Inputs.Integrity.Exclude) == 0 {
				c.Inputs.Integrity.Exclude = nil // the example's []
			}
			return c.Inputs.Integrity
		}, new(integrity.DefaultConfig())},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			out, err := runConfigExample(t, c.name)
			require.NoError(t, err)
			var b strings.Builder
			b.WriteString("inputs:\n  " + c.name + ":\n")
			for _, l := range strings.SplitAfter(out, "\n") {
				if l != "" {
					b.WriteString("    " + l)
				}
			}
			p := filepath.Join(t.TempDir(), "weir.yaml")
			require.NoError(t, os.WriteFile(p, []byte(b.String()), 0o600))
			l, err := gateway.Load(p, true)
			require.NoError(t, err, "example under inputs.%s:\n%s", c.name, b.String())
			require.Equal(t, c.def, c.want(&l.Config))
		})
	}
}

func TestConfigExample(t *testing.T) {
	out, err := runConfigExample(t)
	require.NoError(t, err)
	require.Equal(t, string(gateway.DefaultYAML()), out)
	for _, name := range exampleNames() {
		out, err := runConfigExample(t, name)
		require.NoError(t, err)
		require.NotEmpty(t, out, name)
	}
	_, err = runConfigExample(t, "snmp")
	require.ErrorContains(t, err, `"snmp" is not modbus, lines, syslog, audit, integrity, board, outputs, rules or processors`)
}

// exampleDocs are the configurations `weir config example` prints: the
// whole default, and each input's example put where it goes.
func exampleDocs(t *testing.T) map[string]*yaml.Node {
	t.Helper()
	docs := map[string]*yaml.Node{}
	for _, name := range append([]string{""}, exampleNames()...) {
		var args []string
		if name != "" {
			args = []string{name}
		}
		input := name != "" && configExamples[slices.IndexFunc(configExamples, func(e configExample) bool { return e.name == name })].input
		out, err := runConfigExample(t, args...)
		require.NoError(t, err)
		var ex yaml.Node
		require.NoError(t, yaml.Unmarshal([]byte(out), &ex), name)
		body := ex.Content[0]
		if input {
			if name == "lines" {
				body = &yaml.Node{Kind: yaml.SequenceNode, Content: []*yaml.Node{body}}
			}
			body = &yaml.Node{Kind: yaml.MappingNode, Content: []*yaml.Node{
				{Kind: yaml.ScalarNode, Value: "inputs"},
				{Kind: yaml.MappingNode, Content: []*yaml.Node{{Kind: yaml.ScalarNode, Value: name}, body}},
			}}
		}
		docs[cmp.Or(name, "default")] = body
	}
	return docs
}

// keyNodes lists the key nodes of n with the names of their siblings.
func keyNodes(n *yaml.Node, path string) (keys []*yaml.Node, paths []string, siblings [][]string) {
	switch n.Kind {
	case yaml.MappingNode:
		var names []string
		for i := 0; i+1 < len(n.Content); i += 2 {
			names = append(names, strings.ToLower(n.Content[i].Value))
		}
		for i := 0; i+1 < len(n.Content); i += 2 {
			p := path + "." + strings.ToLower(n.Content[i].Value)
			keys, paths, siblings = append(keys, n.Content[i]), append(paths, p), append(siblings, names)
			k, ps, s := keyNodes(n.Content[i+1], p)
			keys, paths, siblings = append(keys, k...), append(paths, ps...), append(siblings, s...)
		}
	case yaml.SequenceNode:
		for _, item := range n.Content {
			k, ps, s := keyNodes(item, path+"[]")
			keys, paths, siblings = append(keys, k...), append(paths, ps...), append(siblings, s...)
		}
	}
	return keys, paths, siblings
}

// misspell makes the usual slips of a key: a letter left out, doubled,
// swapped with its neighbour or wrong, an extra one, - for _, and all
// of it in capitals (which is still the key).
func misspell(k string) []string {
	m := len(k) / 2
	out := []string{k[1:], k[:len(k)-1], k[:m] + k[m+1:], k[:m] + k[m:m+1] + k[m:]}
	if len(k) > 2 {
		out = append(out, k[:m-1]+k[m:m+1]+k[m-1:m]+k[m+1:], k[:1]+"x"+k[1:], k[:m]+"q"+k[m+1:])
	}
	out = append(out, strings.ReplaceAll(k, "_", "-"), k+"s")
	return out
}

// TestConfigExampleKeys: every key `weir config example` prints is
// accepted, in any case; its misspellings (a third of misspell's slips
// for each key, every kind of slip on a third of the keys) are refused
// naming it.
func TestConfigExampleKeys(t *testing.T) {
	dir := t.TempDir()
	load := func(doc *yaml.Node) error {
		b, err := yaml.Marshal(doc)
		require.NoError(t, err)
		p := filepath.Join(dir, "weir.yaml")
		require.NoError(t, os.WriteFile(p, b, 0o600))
		_, err = gateway.Load(p, true)
		return err
	}
	tried := 0
	// The examples of the inputs repeat the keys of the default one; a
	// key is misspelt in the first example that has it (each load is a
	// full one, and this test made a minute and a half of make test).
	seen := map[string]bool{}
	for name, doc := range exampleDocs(t) {
		require.NoError(t, load(doc), "example %s as printed", name)
		keys, paths, siblings := keyNodes(doc, "")
		require.NotEmpty(t, keys)
		for i, k := range keys {
			if seen[paths[i]] {
				continue
			}
			seen[paths[i]] = true
			orig := k.Value
			k.Value = strings.ToUpper(orig)
			require.NoError(t, load(doc), "example %s: %s in capitals", name, orig)
			for j, typo := range misspell(orig) {
				// A third of the slips for each key, a different third
				// for the next: every kind is tried on a third of the keys.
				if (i+j)%3 != 0 || typo == orig || slices.Contains(siblings[i], strings.ToLower(typo)) {
					continue // another key of the section, or no slip at all
				}
				k.Value = typo
				err := load(doc)
				require.Error(t, err, "example %s: %s written %s", name, orig, typo)
				require.Contains(t, err.Error(), "unknown key `"+typo+"`; did you mean ", "example %s: %s written %s", name, orig, typo)
				require.Regexp(t, "did you mean [^?]*`"+regexp.QuoteMeta(orig)+"`", err.Error(), "example %s: %s written %s", name, orig, typo)
				tried++
			}
			k.Value = orig
		}
	}
	t.Logf("%d misspellings refused with the key they meant", tried)
	require.Greater(t, tried, 800)
}
