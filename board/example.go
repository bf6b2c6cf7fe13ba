package board

import (
	"bytes"
	_ "embed"
)

//go:embed example.yaml
var exampleYAML []byte

// ExampleYAML returns an example board section with every key and a
// comment (board/example.yaml), as each input has one.
func ExampleYAML() []byte { return bytes.Clone(exampleYAML) }
