package process

import (
	"bytes"
	_ "embed"
)

//go:embed example.yaml
var exampleYAML []byte

// ExampleYAML is the processors section as `weir config example
// processors` prints it.
func ExampleYAML() []byte { return bytes.Clone(exampleYAML) }
