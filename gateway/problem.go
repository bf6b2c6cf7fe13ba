package gateway

import (
	"fmt"
	"sort"
	"strconv"
	"strings"
)

// TopLevel names the root of the configuration in messages.
const TopLevel = "top level"

// Problem is one thing wrong with the configuration, placed where the
// operator can find it: a file's line and column, or the environment
// variable that set the value.
type Problem struct {
	File   string `json:"file,omitempty"`
	Line   int    `json:"line,omitempty"`
	Column int    `json:"column,omitempty"`
	// Env is the WEIR_* variable the value came from, if it did.
	Env string `json:"env,omitempty"`
	// Key is the full path of the key ("uplink.endpoints[0].address",
	// TopLevel for the root); empty when the problem is the file itself.
	Key     string `json:"key,omitempty"`
	Message string `json:"message"`
}

// Where is the place part of the message: "weir.yaml:3:5",
// "environment WEIR_UPLINK_WINDOW", "built-in defaults".
func (p Problem) Where() string {
	switch {
	case p.Env != "":
		return "environment " + p.Env
	case p.File == "":
		return "built-in defaults"
	case p.Line == 0:
		return p.File
	case p.Column == 0:
		return p.File + ":" + strconv.Itoa(p.Line)
	}
	return p.File + ":" + strconv.Itoa(p.Line) + ":" + strconv.Itoa(p.Column)
}

func (p Problem) String() string {
	if p.Key == "" {
		return p.Where() + ": " + p.Message
	}
	return p.Where() + ": " + p.Key + ": " + p.Message
}

// ConfigError is every problem found in a configuration, in the order of
// the file (environment after it).
type ConfigError struct {
	Problems []Problem
}

func (e *ConfigError) Error() string {
	if len(e.Problems) == 1 {
		return "config " + e.Problems[0].String()
	}
	var b strings.Builder
	fmt.Fprintf(&b, "config: %d problems:", len(e.Problems))
	for _, p := range e.Problems {
		b.WriteString("\n  " + p.String())
	}
	return b.String()
}

// sortProblems orders problems by place: file lines first, then
// variables, then the rest, keeping the order found among equals.
func sortProblems(ps []Problem) {
	rank := func(p Problem) int {
		switch {
		case p.Line > 0:
			return 0
		case p.Env != "":
			return 1
		}
		return 2
	}
	sort.SliceStable(ps, func(i, j int) bool {
		a, b := ps[i], ps[j]
		if ra, rb := rank(a), rank(b); ra != rb {
			return ra < rb
		}
		if a.Line != b.Line {
			return a.Line < b.Line
		}
		if a.Column != b.Column {
			return a.Column < b.Column
		}
		return a.Env < b.Env
	})
}

// suggest returns the candidates nearest to s, for "did you mean": a
// misspelling (a letter left out, doubled, swapped or wrong), another case,
// or - for _ or camelCase. Nothing when no candidate is near.
func suggest(s string, candidates []string) []string {
	best, out := -1, []string(nil)
	for _, c := range candidates {
		d := min(editDistance(strings.ToLower(s), strings.ToLower(c)), editDistance(squash(s), squash(c)))
		if d > allowedDistance(c) {
			continue
		}
		switch {
		case best < 0 || d < best:
			best, out = d, []string{c}
		case d == best && !containsString(out, c):
			out = append(out, c)
		}
	}
	return out
}

func containsString(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// allowedDistance grows with the word: two letters wrong in "id" is
// another word, in "telemetry_interval" still a typo.
func allowedDistance(word string) int {
	switch n := len(word); {
	case n <= 4:
		return 1
	case n <= 9:
		return 2
	}
	return 3
}

// squash folds the ways one name is spelt: case, _ and -.
func squash(s string) string {
	return strings.Map(func(r rune) rune {
		if r == '_' || r == '-' {
			return -1
		}
		if r >= 'A' && r <= 'Z' {
			return r + 'a' - 'A'
		}
		return r
	}, s)
}

// editDistance is the optimal string alignment distance: insertions,
// deletions, substitutions and swaps of neighbours each cost one.
func editDistance(a, b string) int {
	ra, rb := []rune(a), []rune(b)
	if len(ra) > 64 || len(rb) > 64 {
		// Keys are short; a long one is no misspelling of any.
		return max(len(ra), len(rb))
	}
	d := make([][]int, len(ra)+1)
	for i := range d {
		d[i] = make([]int, len(rb)+1)
		d[i][0] = i
	}
	for j := range d[0] {
		d[0][j] = j
	}
	for i := 1; i <= len(ra); i++ {
		for j := 1; j <= len(rb); j++ {
			cost := 1
			if ra[i-1] == rb[j-1] {
				cost = 0
			}
			d[i][j] = min(d[i-1][j]+1, d[i][j-1]+1, d[i-1][j-1]+cost)
			if i > 1 && j > 1 && ra[i-1] == rb[j-2] && ra[i-2] == rb[j-1] {
				d[i][j] = min(d[i][j], d[i-2][j-2]+1)
			}
		}
	}
	return d[len(ra)][len(rb)]
}

// didYouMean phrases suggestions: "did you mean `a`?", "did you mean `a`
// or `b`?".
func didYouMean(s []string) string {
	q := make([]string, len(s))
	for i, x := range s {
		q[i] = "`" + x + "`"
	}
	switch len(q) {
	case 0:
		return ""
	case 1:
		return "did you mean " + q[0] + "?"
	}
	return "did you mean " + strings.Join(q[:len(q)-1], ", ") + " or " + q[len(q)-1] + "?"
}
