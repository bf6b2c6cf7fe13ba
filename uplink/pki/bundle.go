package pki

import (
	"bytes"
	"crypto/ed25519"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// A configuration bundle is a YAML document an operator writes:
//
//	version: 7
//	target:
//	  gateways: [pump-3]
//	  labels: {site: north}
//	config:
//	  inputs: ...
//
// and weir-collector fleet sign appends one line to it:
//
//	# weir-signature: ed25519 <key id> <base64 signature>
//
// The signature is ed25519 over bundleDomain and every byte before that
// line, so it covers the version and the target with the configuration:
// a bundle cannot be replayed to another gateway or as another version.
// A signed bundle is still a YAML file one can read.

// MaxBundleBytes bounds a signed bundle: the protocol's
// uplink.MaxBundleBytes (this package cannot import uplink, whose tests
// import it; uplink/collector's tests hold the two equal).
const MaxBundleBytes = 256 << 10

// bundleDomain separates bundle signatures from anything else the key
// might ever sign.
const bundleDomain = "weir fleet bundle v1\n"

const sigPrefix = "# weir-signature: "

// Reasons a bundle is refused before its content is read.
var (
	ErrBundleTooLarge = fmt.Errorf("larger than the %d-byte limit", MaxBundleBytes)
	ErrUnknownKey     = errors.New("signed by a key this gateway does not pin")
	ErrBadSignature   = errors.New("bad signature")
)

// Signed is a bundle's bytes split into what is signed and the signature.
type Signed struct {
	Body  []byte // the YAML document, signed
	KeyID string
	Sig   []byte
}

// SignBundle signs body with key and returns the signed bundle. body
// must not be signed already.
func SignBundle(body []byte, key ed25519.PrivateKey) ([]byte, error) {
	if _, err := ParseSigned(body); err == nil || !errors.Is(err, errNotSigned) {
		return nil, errors.New("pki: sign bundle: it is signed already (sign the document without its weir-signature line)")
	}
	body = bytes.Clone(body)
	if len(body) > 0 && body[len(body)-1] != '\n' {
		body = append(body, '\n')
	}
	pub := key.Public().(ed25519.PublicKey)
	sig := ed25519.Sign(key, append([]byte(bundleDomain), body...))
	out := append(body, sigPrefix+"ed25519 "+FleetKeyID(pub)+" "+base64.StdEncoding.EncodeToString(sig)+"\n"...)
	if len(out) > MaxBundleBytes {
		return nil, fmt.Errorf("pki: sign bundle: %d bytes signed, %w", len(out), ErrBundleTooLarge)
	}
	return out, nil
}

// ParseSigned splits a signed bundle. It reads nothing of the body.
func ParseSigned(raw []byte) (*Signed, error) {
	if len(raw) > MaxBundleBytes {
		return nil, fmt.Errorf("bundle of %d bytes: %w", len(raw), ErrBundleTooLarge)
	}
	if len(raw) == 0 || raw[len(raw)-1] != '\n' {
		return nil, errNotSigned
	}
	start := bytes.LastIndexByte(raw[:len(raw)-1], '\n') + 1
	line := string(raw[start : len(raw)-1])
	rest, ok := strings.CutPrefix(line, sigPrefix)
	if !ok {
		return nil, errNotSigned
	}
	f := strings.Fields(rest)
	if len(f) != 3 || f[0] != "ed25519" || !isKeyID(f[1]) {
		return nil, fmt.Errorf("signature line %q: want ed25519, a 16-digit key id and the signature", clip(line))
	}
	sig, err := base64.StdEncoding.DecodeString(f[2])
	if err != nil || len(sig) != ed25519.SignatureSize {
		return nil, fmt.Errorf("signature line: the signature is not %d bytes of base64", ed25519.SignatureSize)
	}
	return &Signed{Body: raw[:start], KeyID: f[1], Sig: sig}, nil
}

// isKeyID: a key id names a file in the key directory, so only the
// 16 lowercase hex digits FleetKeyID makes pass (never a path).
func isKeyID(s string) bool {
	if len(s) != 16 {
		return false
	}
	for _, c := range []byte(s) {
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

// Verify checks the signature against keys; it returns the id of the
// key that signed.
func (s *Signed) Verify(keys []ed25519.PublicKey) (string, error) {
	var ids []string
	for _, k := range keys {
		id := FleetKeyID(k)
		ids = append(ids, id)
		if id != s.KeyID {
			continue
		}
		if !ed25519.Verify(k, append([]byte(bundleDomain), s.Body...), s.Sig) {
			return id, fmt.Errorf("%w by key %s", ErrBadSignature, id)
		}
		return id, nil
	}
	pinned := "none"
	if len(ids) > 0 {
		pinned = strings.Join(ids, ", ")
	}
	return "", fmt.Errorf("key %s: %w (pinned: %s)", s.KeyID, ErrUnknownKey, pinned)
}

// Bundle is a bundle's document: its version, its target and the
// configuration as a YAML mapping, for the gateway to decode with its
// schema.
type Bundle struct {
	Version uint64
	Target  Target
	Config  *yaml.Node // a mapping; nil when the bundle gives none
}

// Target selects the gateways a bundle is for: those listed by id, and
// those carrying every label given.
type Target struct {
	Gateways []string          `json:"gateways,omitempty"`
	Labels   map[string]string `json:"labels,omitempty"`
}

// Matches says whether a gateway with this id and labels is selected.
func (t Target) Matches(id string, labels map[string]string) bool {
	if slices.Contains(t.Gateways, id) {
		return true
	}
	if len(t.Labels) == 0 {
		return false
	}
	for k, v := range t.Labels {
		if labels[k] != v {
			return false
		}
	}
	return true
}

// Empty says the target selects nothing.
func (t Target) Empty() bool { return len(t.Gateways) == 0 && len(t.Labels) == 0 }

// String writes the target as --target takes it: ids and key=value
// labels, comma-separated.
func (t Target) String() string {
	parts := slices.Clone(t.Gateways)
	for _, k := range slices.Sorted(maps.Keys(t.Labels)) {
		parts = append(parts, k+"="+t.Labels[k])
	}
	return strings.Join(parts, ",")
}

// ParseTarget reads a target written as String writes it.
func ParseTarget(spec string) (Target, error) {
	var t Target
	for _, p := range strings.Split(spec, ",") {
		p = strings.TrimSpace(p)
		if p == "" {
			continue
		}
		if k, v, ok := strings.Cut(p, "="); ok {
			if k == "" || v == "" {
				return Target{}, fmt.Errorf("target %q: a label is key=value", clip(p))
			}
			if t.Labels == nil {
				t.Labels = map[string]string{}
			}
			t.Labels[k] = v
			continue
		}
		if err := ValidateID(p); err != nil {
			return Target{}, fmt.Errorf("target %q: %w", clip(p), err)
		}
		t.Gateways = append(t.Gateways, p)
	}
	if t.Empty() {
		return Target{}, errors.New("target: name gateway ids or key=value labels")
	}
	return t, nil
}

// ParseBundle reads a bundle's document (the signed body, or a file
// before it is signed). It is one YAML document with the keys version
// (a whole number from 1), target (gateways, labels: at least one) and
// config (a mapping), and nothing else; anchors, aliases and merge keys
// are refused, so what the bundle sets is what it writes.
func ParseBundle(body []byte) (*Bundle, error) {
	if len(body) > MaxBundleBytes {
		return nil, fmt.Errorf("bundle of %d bytes: %w", len(body), ErrBundleTooLarge)
	}
	dec := yaml.NewDecoder(bytes.NewReader(body))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, errors.New("invalid YAML: the bundle is empty")
		}
		return nil, fmt.Errorf("invalid YAML: %s", strings.TrimPrefix(err.Error(), "yaml: "))
	}
	var next yaml.Node
	if err := dec.Decode(&next); !errors.Is(err, io.EOF) {
		return nil, errors.New("invalid YAML: a bundle is one document")
	}
	if len(doc.Content) != 1 || doc.Content[0].Kind != yaml.MappingNode {
		return nil, errors.New("invalid bundle: not a mapping of version, target and config")
	}
	if err := plainNodes(doc.Content[0], 0); err != nil {
		return nil, err
	}
	b := &Bundle{}
	root := doc.Content[0]
	seen := map[string]bool{}
	for i := 0; i+1 < len(root.Content); i += 2 {
		k, v := root.Content[i], root.Content[i+1]
		if seen[k.Value] {
			return nil, fmt.Errorf("line %d: %s given twice", k.Line, k.Value)
		}
		seen[k.Value] = true
		switch k.Value {
		case "version":
			n, err := strconv.ParseUint(v.Value, 10, 64)
			if v.Kind != yaml.ScalarNode || v.ShortTag() != "!!int" || err != nil || n == 0 {
				return nil, fmt.Errorf("line %d: version: want a whole number from 1, found %q", v.Line, clip(v.Value))
			}
			b.Version = n
		case "target":
			t, err := parseTargetNode(v)
			if err != nil {
				return nil, err
			}
			b.Target = t
		case "config":
			switch {
			case v.Kind == yaml.MappingNode:
				b.Config = v
			case v.Kind == yaml.ScalarNode && v.ShortTag() == "!!null":
			default:
				return nil, fmt.Errorf("line %d: config: want a mapping of the configuration's keys", v.Line)
			}
		default:
			return nil, fmt.Errorf("line %d: unknown key %q; a bundle has version, target and config", k.Line, clip(k.Value))
		}
	}
	switch {
	case b.Version == 0:
		return nil, errors.New("invalid bundle: no version")
	case b.Target.Empty():
		return nil, errors.New("invalid bundle: no target (gateways or labels)")
	}
	return b, nil
}

// plainNodes refuses anchors, aliases and merge keys, and nesting past
// what a configuration needs.
func plainNodes(n *yaml.Node, depth int) error {
	if depth > 32 {
		return fmt.Errorf("line %d: nested too deep", n.Line)
	}
	if n.Kind == yaml.AliasNode || n.Anchor != "" || (n.Kind == yaml.ScalarNode && n.ShortTag() == "!!merge") {
		return fmt.Errorf("line %d: anchors, aliases and merge keys are not taken in a bundle; write it out", n.Line)
	}
	for _, c := range n.Content {
		if err := plainNodes(c, depth+1); err != nil {
			return err
		}
	}
	return nil
}

func parseTargetNode(v *yaml.Node) (Target, error) {
	var t Target
	if v.Kind != yaml.MappingNode {
		return t, fmt.Errorf("line %d: target: want a mapping of gateways and labels", v.Line)
	}
	for i := 0; i+1 < len(v.Content); i += 2 {
		k, x := v.Content[i], v.Content[i+1]
		switch k.Value {
		case "gateways":
			if x.Kind != yaml.SequenceNode {
				return t, fmt.Errorf("line %d: target.gateways: want a list of gateway ids", x.Line)
			}
			for _, e := range x.Content {
				if e.Kind != yaml.ScalarNode || ValidateID(e.Value) != nil {
					return t, fmt.Errorf("line %d: target.gateways: %q is not a gateway id", e.Line, clip(e.Value))
				}
				t.Gateways = append(t.Gateways, e.Value)
			}
		case "labels":
			if x.Kind != yaml.MappingNode {
				return t, fmt.Errorf("line %d: target.labels: want a mapping of label: value", x.Line)
			}
			t.Labels = map[string]string{}
			for j := 0; j+1 < len(x.Content); j += 2 {
				lk, lv := x.Content[j], x.Content[j+1]
				if lk.Kind != yaml.ScalarNode || lv.Kind != yaml.ScalarNode || lk.Value == "" || lv.Value == "" {
					return t, fmt.Errorf("line %d: target.labels: want label: value", lk.Line)
				}
				t.Labels[lk.Value] = lv.Value
			}
		default:
			return t, fmt.Errorf("line %d: target: unknown key %q; it has gateways and labels", k.Line, clip(k.Value))
		}
	}
	return t, nil
}

// OpenBundle checks a signed bundle against the pinned keys, in the
// order a gateway refuses one: its size, its signature line, a key it
// pins, the signature, then its document.
func OpenBundle(raw []byte, keys []ed25519.PublicKey) (*Bundle, string, error) {
	s, err := ParseSigned(raw)
	if err != nil {
		return nil, "", err
	}
	id, err := s.Verify(keys)
	if err != nil {
		return nil, id, err
	}
	b, err := ParseBundle(s.Body)
	if err != nil {
		return nil, id, err
	}
	return b, id, nil
}
