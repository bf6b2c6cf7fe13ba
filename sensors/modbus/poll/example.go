package poll

import (
	"bytes"
	_ "embed"
)

//go:embed example.yaml
var exampleYAML []byte

// ExampleYAML returns an example inputs.modbus block, every key commented.
func ExampleYAML() []byte { return bytes.Clone(exampleYAML) }
