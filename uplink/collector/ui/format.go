package ui

import (
	"fmt"
	"html/template"
	"math"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// clean makes a gateway's string safe to look at: html/template escapes
// markup; this shows what a terminal or a reader would otherwise not see
// (control characters, bidirectional overrides, invalid UTF-8) as
// visible escapes, like weir's CLI does.
func clean(s string) string {
	ok := true
	for _, r := range s {
		if r == utf8.RuneError || invisible(r) {
			ok = false
			break
		}
	}
	if ok {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); {
		r, n := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && n <= 1:
			fmt.Fprintf(&b, `\x%02x`, s[i])
		case invisible(r):
			if r < 0x80 {
				fmt.Fprintf(&b, `\x%02x`, r)
			} else {
				fmt.Fprintf(&b, `\u%04x`, r)
			}
		default:
			b.WriteString(s[i : i+n])
		}
		i += n
	}
	return b.String()
}

func invisible(r rune) bool {
	switch {
	case r == '\t':
		return false
	case unicode.IsControl(r):
		return true
	case r >= 0x202a && r <= 0x202e, r >= 0x2066 && r <= 0x2069, r == 0x200e, r == 0x200f, r == 0x061c:
		return true // bidirectional overrides and marks
	}
	return false
}

func fmtAge(d time.Duration) string {
	switch {
	case d < 0:
		return "0s"
	case d < 2*time.Minute:
		return fmt.Sprintf("%ds", int(d/time.Second))
	case d < 2*time.Hour:
		return fmt.Sprintf("%dm", int(d/time.Minute))
	case d < 48*time.Hour:
		return fmt.Sprintf("%dh", int(d/time.Hour))
	}
	return fmt.Sprintf("%dd", int(d/(24*time.Hour)))
}

// si prints v with an SI prefix and unit: 1.2 M, 340 k, 12.
func si(v float64, unit string) string {
	if math.IsNaN(v) {
		return "–"
	}
	a := math.Abs(v)
	prefixes := []struct {
		f float64
		p string
	}{{1e9, "G"}, {1e6, "M"}, {1e3, "k"}}
	for _, p := range prefixes {
		if a >= p.f {
			return trim(v/p.f) + " " + p.p + unit
		}
	}
	if unit == "" {
		return trim(v)
	}
	return trim(v) + " " + unit
}

func trim(v float64) string {
	a := math.Abs(v)
	switch {
	case a == 0:
		return "0"
	case a >= 100:
		return fmt.Sprintf("%.0f", v)
	case a >= 10:
		return fmt.Sprintf("%.1f", v)
	case a >= 1:
		return fmt.Sprintf("%.2f", v)
	case a >= 0.01:
		return fmt.Sprintf("%.3f", v)
	}
	return fmt.Sprintf("%.2g", v)
}

// fmtCount prints a count: exact below 10,000, with a prefix above.
func fmtCount(n int64) string {
	if n < 10000 && n > -10000 {
		return strconv.FormatInt(n, 10)
	}
	return si(float64(n), "")
}

func fmtBytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	d, e := float64(n), 0
	for d >= unit && e < 5 {
		d /= unit
		e++
	}
	return fmt.Sprintf("%s %ciB", trim(d), "KMGTP"[e-1])
}

// fmtNS prints a duration in ns the way a clock's bound reads best.
func fmtNS(ns float64) string {
	a := math.Abs(ns)
	switch {
	case a >= 1e9:
		return trim(ns/1e9) + " s"
	case a >= 1e6:
		return trim(ns/1e6) + " ms"
	case a >= 1e3:
		return trim(ns/1e3) + " µs"
	}
	return trim(ns) + " ns"
}

func pct(v float64) string { return trim(100*v) + " %" }

func urlQueryEscape(s string) string { return url.QueryEscape(s) }

// pageHead is what the shared head and foot of every page need.
type pageHead struct {
	Title, Now string
	Refresh    int
	Legend     legend
}

type option struct {
	N   int
	Sel bool
}

func options(cur int, ns ...int) []option {
	var out []option
	found := false
	for _, n := range ns {
		out = append(out, option{n, n == cur})
		found = found || n == cur
	}
	if !found {
		out = append(out, option{cur, true})
	}
	return out
}

var funcs = template.FuncMap{
	"page": func(title, now string, refresh int, l legend) pageHead {
		return pageHead{Title: title, Now: now, Refresh: refresh, Legend: l}
	},
	"perOptions":     func(cur int) []option { return options(cur, 50, 100, 250, 500, 1000) },
	"refreshOptions": func(cur int) []option { return options(cur, 0, 10, 30, 60) },
}
