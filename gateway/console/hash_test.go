package console

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"golang.org/x/crypto/bcrypt"
)

// cheap keeps the tests fast; the format and the check are the same.
var cheap = Argon2Params{Memory: 64, Time: 1, Threads: 1}

func TestArgon2idRoundTrip(t *testing.T) {
	h, err := HashArgon2id([]byte("correct horse"), cheap)
	require.NoError(t, err)
	require.Regexp(t, `^\$argon2id\$v=19\$m=64,t=1,p=1\$[A-Za-z0-9+/]{22}\$[A-Za-z0-9+/]{43}$`, h)
	p, err := ParseHash(h)
	require.NoError(t, err)
	require.Equal(t, Argon2id, p.Algorithm())
	require.True(t, p.Verify([]byte("correct horse")))
	require.False(t, p.Verify([]byte("correct horsf")))
	require.False(t, p.Verify(nil))
	h2, err := HashArgon2id([]byte("correct horse"), cheap)
	require.NoError(t, err)
	require.NotEqual(t, h, h2, "a fresh salt each time")
}

// TestArgon2idReference checks against a hash made by the reference
// implementation (argon2 CLI: echo -n password | argon2 somesalt -id -t 2
// -m 16 -p 4 -l 32), so the PHC form and parameters are read as others
// write them.
func TestArgon2idReference(t *testing.T) {
	p, err := ParseHash("$argon2id$v=19$m=65536,t=2,p=4$c29tZXNhbHQ$GpZ3sK/oH9p7VIiV56G/64Zo/8GaUw434IimaPqxwCo")
	require.NoError(t, err)
	require.True(t, p.Verify([]byte("password")))
	require.False(t, p.Verify([]byte("Password")))
}

func TestBcrypt(t *testing.T) {
	b, err := bcrypt.GenerateFromPassword([]byte("s3cret-pass"), bcrypt.MinCost)
	require.NoError(t, err)
	p, err := ParseHash(string(b))
	require.NoError(t, err)
	require.Equal(t, Bcrypt, p.Algorithm())
	require.True(t, p.Verify([]byte("s3cret-pass")))
	require.False(t, p.Verify([]byte("s3cret-pasS")))
}

func TestParseHashRefuses(t *testing.T) {
	good := "$argon2id$v=19$m=64,t=1,p=1$c29tZXNhbHQ$GpZ3sK/oH9p7VIiV56G/64Zo/8GaUw434IimaPqxwCo"
	_, err := ParseHash(good)
	require.NoError(t, err)
	for _, c := range []struct{ in, want string }{
		{"", "not an argon2id PHC string"},
		{"hunter2", "not an argon2id PHC string"},
		{"$argon2i$v=19$m=64,t=1,p=1$c29tZXNhbHQ$GpZ3sK/oH9p7VIiV56G/64Zo/8GaUw434IimaPqxwCo", "use argon2id"},
		{"$argon2id$v=16$m=64,t=1,p=1$c29tZXNhbHQ$GpZ3sK/oH9p7VIiV56G/64Zo/8GaUw434IimaPqxwCo", "version must be v=19"},
		{"$argon2id$v=19$m=64,t=1$c29tZXNhbHQ$GpZ3sK/oH9p7VIiV56G/64Zo/8GaUw434IimaPqxwCo", "each once"},
		{"$argon2id$v=19$m=64,t=1,p=1,p=1$c29tZXNhbHQ$GpZ3sK/oH9p7VIiV56G/64Zo/8GaUw434IimaPqxwCo", "each once"},
		{"$argon2id$v=19$m=64,t=1,x=1$c29tZXNhbHQ$GpZ3sK/oH9p7VIiV56G/64Zo/8GaUw434IimaPqxwCo", "each once"},
		{"$argon2id$v=19$m=4194304,t=1,p=1$c29tZXNhbHQ$GpZ3sK/oH9p7VIiV56G/64Zo/8GaUw434IimaPqxwCo", "m=4194304 out of range"},
		{"$argon2id$v=19$m=64,t=1000,p=1$c29tZXNhbHQ$GpZ3sK/oH9p7VIiV56G/64Zo/8GaUw434IimaPqxwCo", "t=1000 out of range"},
		{"$argon2id$v=19$m=64,t=1,p=0$c29tZXNhbHQ$GpZ3sK/oH9p7VIiV56G/64Zo/8GaUw434IimaPqxwCo", "p=0 out of range"},
		{"$argon2id$v=19$m=64,t=1,p=300$c29tZXNhbHQ$GpZ3sK/oH9p7VIiV56G/64Zo/8GaUw434IimaPqxwCo", "p out of range"},
		{"$argon2id$v=19$m=64,t=x,p=1$c29tZXNhbHQ$GpZ3sK/oH9p7VIiV56G/64Zo/8GaUw434IimaPqxwCo", "t is not a number"},
		{"$argon2id$v=19$m=64,t=1,p=1$c29tZXNhbHQ=$GpZ3sK/oH9p7VIiV56G/64Zo/8GaUw434IimaPqxwCo", "salt"},
		{"$argon2id$v=19$m=64,t=1,p=1$c2FsdA$GpZ3sK/oH9p7VIiV56G/64Zo/8GaUw434IimaPqxwCo", "salt"},
		{"$argon2id$v=19$m=64,t=1,p=1$c29tZXNhbHQ$GpZ3sK", "the hash must be"},
		{"$argon2id$v=19$m=64,t=1,p=1$c29tZXNhbHQ", "want $argon2id$v=19"},
		{"$2b$04$short", "bcrypt"},
		{"$2b$31$" + strings.Repeat("a", 53), "cost 31 is above 16"},
	} {
		_, err := ParseHash(c.in)
		require.ErrorContains(t, err, c.want, "%q", c.in)
		if len(c.in) > 12 {
			require.NotContains(t, err.Error(), c.in[len(c.in)-12:], "an error never quotes the hash")
		}
	}
}

// TestHashPasswordDefaults: weir passwd's hashes carry the default
// costs (checking them is TestArgon2idRoundTrip's and TestBcrypt's, at
// lower costs).
func TestHashPasswordDefaults(t *testing.T) {
	if testing.Short() {
		t.Skip("64 MiB argon2id and bcrypt cost 12; skipped with -short")
	}
	h, err := HashPassword([]byte("field-tech-2026"), Argon2id)
	require.NoError(t, err)
	require.Contains(t, h, "$argon2id$v=19$m=65536,t=3,p=4$")
	p, err := ParseHash(h)
	require.NoError(t, err)
	require.Equal(t, DefaultArgon2, p.params)
	h, err = HashPassword([]byte("field-tech-2026"), Bcrypt)
	require.NoError(t, err)
	cost, err := bcrypt.Cost([]byte(h))
	require.NoError(t, err)
	require.Equal(t, DefaultBcryptCost, cost)
	_, err = HashPassword([]byte("x"), "md5")
	require.ErrorContains(t, err, `"md5" is not argon2id or bcrypt`)
}

func FuzzParseHash(f *testing.F) {
	f.Add("$argon2id$v=19$m=64,t=1,p=1$c29tZXNhbHQ$GpZ3sK/oH9p7VIiV56G/64Zo/8GaUw434IimaPqxwCo")
	f.Add("$2b$04$abcdefghijklmnopqrstuuABCDEFGHIJKLMNOPQRSTUVWXYZ01234")
	f.Add("$argon2id$v=19$m=8,t=1,p=1$AAAAAAAAAAA$AAAAAAAAAAAAAAAAAAAAAA")
	f.Fuzz(func(t *testing.T, s string) {
		h, err := ParseHash(s)
		if err != nil {
			return
		}
		// Whatever parsed is bounded in cost: checking it must be cheap
		// enough to run here.
		if h.Algorithm() == Argon2id && h.params.Memory <= 1024 && h.params.Time <= 2 {
			h.Verify([]byte("pw"))
		}
	})
}
