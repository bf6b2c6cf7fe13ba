package gateway

import (
	"testing"

	"github.com/stretchr/testify/require"
)

// TestInputNamesAreUnique: an input's name is its records' source and its
// checkpoints' key, so no two inputs of any kind may share one.
func TestInputNamesAreUnique(t *testing.T) {
	for _, c := range []struct{ body, want string }{
		{"inputs: {files: [{name: app, paths: [/a]}, {name: app, paths: [/b]}]}",
			`inputs.files[1].name: "app" is already used by inputs.files[0]`},
		{"inputs: {files: [{name: gps1, paths: [/a]}], lines: [{name: gps1, port: {device: /dev/ttyS9}}]}",
			`inputs.lines[0].name: "gps1" is already used by inputs.files[0]`},
		{"inputs: {files: [{name: syslog, paths: [/var/log/syslog]}], syslog: {}}",
			`inputs.syslog.name: "syslog" is already used by inputs.files[0]`},
		{"inputs: {audit: {name: integrity}, integrity: {}}",
			`inputs.integrity.name: "integrity" is already used by inputs.audit`},
	} {
		t.Run(c.body, func(t *testing.T) {
			_, err := Load(writeConfig(t, c.body), true)
			require.ErrorContains(t, err, c.want)
		})
	}
	_, err := Load(writeConfig(t, "inputs: {files: [{name: app, paths: [/a]}], syslog: {name: net}, audit: {}, integrity: {}}"), true)
	require.NoError(t, err)
}
