package console

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"golang.org/x/crypto/argon2"
	"golang.org/x/crypto/bcrypt"
)

// Algorithm names a password hash.
type Algorithm string

// Algorithms `weir passwd` makes and the console checks.
const (
	Argon2id Algorithm = "argon2id"
	Bcrypt   Algorithm = "bcrypt"
)

// Argon2Params are argon2id's costs: memory in KiB, passes, lanes.
type Argon2Params struct {
	Memory  uint32
	Time    uint32
	Threads uint8
}

// DefaultArgon2 is RFC 9106's second recommended setting (64 MiB, 3
// passes, 4 lanes): about a second per login on a Cortex-A7, once per
// attempt, in the console's own process.
var DefaultArgon2 = Argon2Params{Memory: 64 << 10, Time: 3, Threads: 4}

// DefaultBcryptCost is bcrypt's cost for new hashes.
const DefaultBcryptCost = 12

// Limits on the hashes the console takes. A hash is configuration, but one
// asking for gigabytes or hours per check would let anyone at the login
// prompt exhaust the board, so costs are bounded: 256 MiB and 16 passes
// for argon2id, cost 16 for bcrypt.
const (
	maxArgon2Memory  = 256 << 10
	maxArgon2Time    = 16
	maxArgon2Threads = 16
	maxBcryptCost    = 16
	argon2SaltLen    = 16
	argon2KeyLen     = 32
)

// Hash is a parsed password hash.
type Hash struct {
	alg    Algorithm
	params Argon2Params
	salt   []byte
	key    []byte // argon2id's output, or the whole bcrypt hash
}

// Algorithm says which kind of hash h is.
func (h *Hash) Algorithm() Algorithm { return h.alg }

// HashPassword hashes password with alg at its default cost.
func HashPassword(password []byte, alg Algorithm) (string, error) {
	switch alg {
	case Argon2id:
		return HashArgon2id(password, DefaultArgon2)
	case Bcrypt:
		b, err := bcrypt.GenerateFromPassword(password, DefaultBcryptCost)
		if err != nil {
			return "", fmt.Errorf("console: bcrypt: %w", err)
		}
		return string(b), nil
	}
	return "", fmt.Errorf("console: algorithm %q is not argon2id or bcrypt", alg)
}

// HashArgon2id hashes password with a fresh random salt and returns the
// PHC string: $argon2id$v=19$m=65536,t=3,p=4$<salt>$<hash>, both in
// unpadded standard base64.
func HashArgon2id(password []byte, p Argon2Params) (string, error) {
	if err := p.check(); err != nil {
		return "", fmt.Errorf("console: argon2id: %w", err)
	}
	salt := make([]byte, argon2SaltLen)
	if _, err := rand.Read(salt); err != nil {
		return "", fmt.Errorf("console: argon2id salt: %w", err)
	}
	key := argon2.IDKey(password, salt, p.Time, p.Memory, p.Threads, argon2KeyLen)
	enc := base64.RawStdEncoding
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s", argon2.Version, p.Memory, p.Time, p.Threads,
		enc.EncodeToString(salt), enc.EncodeToString(key)), nil
}

func (p Argon2Params) check() error {
	switch {
	case p.Threads < 1 || p.Threads > maxArgon2Threads:
		return fmt.Errorf("p=%d out of range 1..%d", p.Threads, maxArgon2Threads)
	case p.Time < 1 || p.Time > maxArgon2Time:
		return fmt.Errorf("t=%d out of range 1..%d", p.Time, maxArgon2Time)
	case p.Memory < 8*uint32(p.Threads) || p.Memory > maxArgon2Memory:
		return fmt.Errorf("m=%d out of range %d..%d (KiB)", p.Memory, 8*uint32(p.Threads), maxArgon2Memory)
	}
	return nil
}

// ParseHash reads an argon2id PHC string or a bcrypt hash. Its errors
// describe the form, never quote the hash: it is a secret.
func ParseHash(s string) (*Hash, error) {
	switch {
	case strings.HasPrefix(s, "$argon2id$"):
		return parseArgon2id(s)
	case strings.HasPrefix(s, "$2a$"), strings.HasPrefix(s, "$2b$"), strings.HasPrefix(s, "$2y$"):
		cost, err := bcrypt.Cost([]byte(s))
		if err != nil {
			return nil, errors.New("not a well-formed bcrypt hash")
		}
		if cost > maxBcryptCost {
			return nil, fmt.Errorf("bcrypt cost %d is above %d: each login would take minutes", cost, maxBcryptCost)
		}
		return &Hash{alg: Bcrypt, key: []byte(s)}, nil
	case strings.HasPrefix(s, "$argon2i$"), strings.HasPrefix(s, "$argon2d$"):
		return nil, errors.New("argon2i and argon2d are not taken; use argon2id")
	}
	return nil, errors.New("not an argon2id PHC string ($argon2id$v=19$m=...,t=...,p=...$salt$hash) or a bcrypt hash ($2b$...)")
}

func parseArgon2id(s string) (*Hash, error) {
	parts := strings.Split(s, "$")
	// "", "argon2id", "v=19", "m=..,t=..,p=..", salt, hash
	if len(parts) != 6 {
		return nil, errors.New("argon2id: want $argon2id$v=19$m=...,t=...,p=...$salt$hash")
	}
	if parts[2] != "v="+strconv.Itoa(argon2.Version) {
		return nil, fmt.Errorf("argon2id: version must be v=%d", argon2.Version)
	}
	h := &Hash{alg: Argon2id}
	seen := map[string]bool{}
	for _, kv := range strings.Split(parts[3], ",") {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || seen[k] {
			return nil, errors.New("argon2id: parameters must be m=...,t=...,p=..., each once")
		}
		seen[k] = true
		n, err := strconv.ParseUint(v, 10, 32)
		if err != nil {
			return nil, fmt.Errorf("argon2id: parameter %s is not a number", k)
		}
		switch k {
		case "m":
			h.params.Memory = uint32(n)
		case "t":
			h.params.Time = uint32(n)
		case "p":
			if n > maxArgon2Threads {
				return nil, fmt.Errorf("argon2id: p out of range 1..%d", maxArgon2Threads)
			}
			h.params.Threads = uint8(n)
		default:
			return nil, errors.New("argon2id: parameters must be m=...,t=...,p=..., each once")
		}
	}
	if len(seen) != 3 {
		return nil, errors.New("argon2id: parameters must be m=...,t=...,p=..., each once")
	}
	if err := h.params.check(); err != nil {
		return nil, fmt.Errorf("argon2id: %w", err)
	}
	var err error
	enc := base64.RawStdEncoding.Strict()
	if h.salt, err = enc.DecodeString(parts[4]); err != nil || len(h.salt) < 8 || len(h.salt) > 64 {
		return nil, errors.New("argon2id: the salt must be 8 to 64 bytes in unpadded base64")
	}
	if h.key, err = enc.DecodeString(parts[5]); err != nil || len(h.key) < 16 || len(h.key) > 64 {
		return nil, errors.New("argon2id: the hash must be 16 to 64 bytes in unpadded base64")
	}
	return h, nil
}

// Verify says whether password is the one h was made from, in time that
// does not depend on where they differ.
func (h *Hash) Verify(password []byte) bool {
	if h.alg == Bcrypt {
		return bcrypt.CompareHashAndPassword(h.key, password) == nil
	}
	key := argon2.IDKey(password, h.salt, h.params.Time, h.params.Memory, h.params.Threads, uint32(len(h.key)))
	return subtle.ConstantTimeCompare(key, h.key) == 1
}
