package rules

import (
	"bytes"
	_ "embed"
)

//go:embed example.yaml
var exampleYAML []byte

// ExampleYAML returns the built-in rules written out as configuration,
// each with its reason, for `weir config example rules`.
func ExampleYAML() []byte { return bytes.Clone(exampleYAML) }
