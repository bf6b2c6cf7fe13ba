package ui

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/weirgw/weir/uplink/collector/fleet"
)

// Plots are inline SVG drawn here: no script runs on the page, so the
// Content-Security-Policy forbids every script, and a site without
// internet needs nothing but the binary.
const (
	plotW, plotH           = 760, 190
	padL, padR, padT, padB = 64, 12, 10, 24
	maxPoints              = 720 // one a pixel or so; more are binned
	minRateBin             = time.Minute
	dotsUpTo               = 90 // a series this sparse also gets a dot per point
	seriesClasses          = 6
	stripW, stripH         = 1520, 50
	// Points closer than this (or three bins, when bins are wider) are
	// joined: telemetry comes once a minute into 10 s buckets. A wider
	// gap (the gateway was off) breaks the line.
	joinGap = 3 * time.Minute
)

type dot struct{ X, Y string }

type lineView struct {
	Class string
	D     string
	Dots  []dot
	Label string
	Last  string
}

type plotView struct {
	ID, Title, Unit string
	W, H            int
	X0, Y0, X1, Y1  string
	FW, FH, MX, MY  string // the frame's size and middle
	YTicks          []yTick
	XTicks          []xTick
	Lines           []lineView
	Points          int
	Empty           bool
}

type yTick struct {
	Y, X, Label string
}

type xTick struct {
	X, Y, Label string
}

func f1(v float64) string { return strconv.FormatFloat(v, 'f', 1, 64) }

// frame maps times and values onto the plot area.
type frame struct {
	start, end time.Time
	lo, hi     float64
	w          float64 // the drawing's width (plotW when zero)
}

func (f frame) x(t time.Time) float64 {
	w := f.w
	if w == 0 {
		w = plotW
	}
	return padL + float64(t.Sub(f.start))/float64(f.end.Sub(f.start))*(w-padL-padR)
}

func (f frame) y(v float64) float64 {
	return plotH - padB - (v-f.lo)/(f.hi-f.lo)*(plotH-padT-padB)
}

// bin merges points so a series has at most maxPoints, and rates have
// buckets of at least minRateBin: a count per 10 s of records that come
// once a minute reads as a comb, not a rate.
func bin(p fleet.Points) fleet.Points {
	k := (len(p.Values) + maxPoints - 1) / maxPoints
	if p.Agg == fleet.AggSum {
		k = max(k, int(minRateBin/p.Step))
	}
	if k <= 1 {
		return p
	}
	out := fleet.Points{Name: p.Name, Agg: p.Agg, Start: p.Start, Step: p.Step * time.Duration(k)}
	for i := 0; i < len(p.Values); i += k {
		j := min(i+k, len(p.Values))
		v := math.NaN()
		if p.Agg == fleet.AggSum {
			// A rate: the mean over the bin, an empty bucket counting as
			// no records.
			var sum float64
			for _, x := range p.Values[i:j] {
				if !math.IsNaN(x) {
					sum += x
				}
			}
			v = sum / float64(j-i)
		} else {
			for _, x := range p.Values[i:j] {
				if !math.IsNaN(x) && (math.IsNaN(v) || math.Abs(x) > math.Abs(v)) {
					v = x
				}
			}
		}
		out.Values = append(out.Values, v)
	}
	return out
}

// niceStep is a round step (1, 2, 5 times a power of ten) giving about
// n ticks over span.
func niceStep(span float64, n int) float64 {
	raw := span / float64(n)
	p := math.Pow(10, math.Floor(math.Log10(raw)))
	for _, m := range []float64{1, 2, 5, 10} {
		if m*p >= raw {
			return m * p
		}
	}
	return 10 * p
}

// plot draws series (each already scaled to the unit) over [start, end].
func plot(id, title, unit string, series []fleet.Points, labels []string, scale float64, start, end time.Time,
	format func(float64) string) plotView {
	pv := plotView{ID: id, Title: title, Unit: unit, W: plotW, H: plotH,
		X0: f1(padL), Y0: f1(padT), X1: f1(plotW - padR), Y1: f1(plotH - padB),
		FW: f1(plotW - padL - padR), FH: f1(plotH - padT - padB), MX: f1((plotW + padL - padR) / 2), MY: f1((plotH + padT - padB) / 2)}
	f := frame{start: start, end: end, lo: math.Inf(1), hi: math.Inf(-1)}
	binned := make([]fleet.Points, len(series))
	for i, s := range series {
		b := bin(s)
		for k := range b.Values {
			b.Values[k] *= scale
			if v := b.Values[k]; !math.IsNaN(v) {
				f.lo, f.hi = math.Min(f.lo, v), math.Max(f.hi, v)
			}
		}
		binned[i] = b
	}
	if math.IsInf(f.lo, 0) {
		pv.Empty = true
		f.lo, f.hi = 0, 1
	}
	f.lo = math.Min(f.lo, 0)
	if f.hi <= f.lo {
		f.hi = f.lo + 1
	}
	step := niceStep((f.hi-f.lo)*1.05, 4)
	f.lo = math.Floor(f.lo/step) * step
	f.hi = math.Ceil(f.hi*1.05/step) * step
	if f.hi <= f.lo {
		f.hi = f.lo + step
	}
	for v := f.lo; v <= f.hi+step/2; v += step {
		pv.YTicks = append(pv.YTicks, yTick{Y: f1(f.y(v)), X: f1(padL - 6), Label: tickLabel(v, step, math.Max(math.Abs(f.lo), math.Abs(f.hi)), unit)})
	}
	for _, t := range timeTicks(start, end) {
		pv.XTicks = append(pv.XTicks, xTick{X: f1(f.x(t.at)), Y: f1(plotH - 6), Label: t.label})
	}
	for i, b := range binned {
		lv := lineView{Class: fmt.Sprintf("s%d", i%seriesClasses), Label: labels[i]}
		var d strings.Builder
		var pts []dot
		last := math.NaN()
		gap := max(joinGap, 3*b.Step)
		var prev time.Time
		for k, v := range b.Values {
			if math.IsNaN(v) {
				continue
			}
			// A bucket's point sits at its middle.
			t := b.Start.Add(time.Duration(k)*b.Step + b.Step/2)
			if t.Before(start) || t.After(end) {
				continue
			}
			x, y := f1(f.x(t)), f1(f.y(v))
			if prev.IsZero() || t.Sub(prev) > gap {
				d.WriteString("M")
			} else {
				d.WriteString("L")
			}
			prev = t
			d.WriteString(x + "," + y)
			pts = append(pts, dot{x, y})
			last = v
			pv.Points++
		}
		lv.D = d.String()
		if len(pts) <= dotsUpTo {
			lv.Dots = pts
		} else {
			// Lone points between gaps would draw nothing: dot them.
			lv.Dots = lonePoints(lv.D)
		}
		lv.Last = "–"
		if !math.IsNaN(last) {
			lv.Last = format(last)
		}
		pv.Lines = append(pv.Lines, lv)
	}
	return pv
}

// lonePoints finds the moves of a path not followed by a line.
func lonePoints(d string) []dot {
	var out []dot
	segs := strings.Split(d, "M")
	for _, s := range segs {
		if s == "" || strings.Contains(s, "L") {
			continue
		}
		x, y, ok := strings.Cut(s, ",")
		if ok {
			out = append(out, dot{x, y})
		}
	}
	return out
}

type timeTick struct {
	at    time.Time
	label string
}

// timeTicks are round times across [start, end] in UTC.
func timeTicks(start, end time.Time) []timeTick {
	span := end.Sub(start)
	var step time.Duration
	layout := "15:04"
	switch {
	case span <= 2*time.Hour:
		step = 10 * time.Minute
	case span <= 26*time.Hour:
		step = 3 * time.Hour
	default:
		step, layout = 24*time.Hour, "Jan 02"
	}
	var out []timeTick
	for t := start.UTC().Truncate(step).Add(step); !t.After(end); t = t.Add(step) {
		out = append(out, timeTick{t, t.UTC().Format(layout)})
	}
	return out
}

type markView struct {
	X, Y, Class, Title string
}

type stripView struct {
	W, H   int
	X0, X1 string
	Marks  []markView
	XTicks []xTick
}

// strip places events on a line over [start, end], a row per type.
func strip(evs []fleet.Event, start, end time.Time) stripView {
	sv := stripView{W: stripW, H: stripH, X0: f1(padL), X1: f1(stripW - padR)}
	f := frame{start: start, end: end, lo: 0, hi: 1, w: stripW}
	rows := map[string]float64{"outage": 8, "reconnect": 8, "certificate": 20, "config": 20, "clock": 20, "bus": 20}
	for _, e := range evs {
		t := time.Unix(0, e.Time)
		if t.Before(start) || t.After(end) {
			continue
		}
		y, ok := rows[e.Type]
		if !ok {
			y = 32 // alerts, tamper, spool, the collector's own
		}
		sv.Marks = append(sv.Marks, markView{X: f1(f.x(t)), Y: f1(y), Class: "ev-" + e.Type + " sev-" + e.Severity,
			Title: t.UTC().Format("2006-01-02 15:04:05") + " " + e.Type + ": " + clean(e.Text)})
	}
	for _, t := range timeTicks(start, end) {
		sv.XTicks = append(sv.XTicks, xTick{X: f1(f.x(t.at)), Y: f1(stripH - 1), Label: t.label})
	}
	return sv
}

// tickLabel prints an axis value with as many decimals as the step needs,
// in the SI prefix (or, for ns, the time unit) of the axis' largest value.
func tickLabel(v, step, top float64, unit string) string {
	div, suffix := 1.0, ""
	if unit == "ns" {
		for _, u := range []struct {
			f float64
			s string
		}{{1e9, " s"}, {1e6, " ms"}, {1e3, " µs"}} {
			if top >= u.f {
				div, suffix = u.f, u.s
				break
			}
		}
		if suffix == "" {
			suffix = " ns"
		}
	} else {
		for _, u := range []struct {
			f float64
			s string
		}{{1e9, " G"}, {1e6, " M"}, {1e3, " k"}} {
			if top >= u.f {
				div, suffix = u.f, u.s
				break
			}
		}
	}
	dec := 0
	if s := step / div; s < 1 {
		dec = min(6, int(math.Ceil(-math.Log10(s)-1e-9)))
	}
	return strconv.FormatFloat(v/div, 'f', dec, 64) + suffix
}
