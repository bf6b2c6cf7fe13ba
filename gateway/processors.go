package gateway

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/weirgw/weir/event"
	"github.com/weirgw/weir/process"
)

// processorSet is the processors section compiled: the chain of each
// input, then the global one. It is immutable once built; a reload
// publishes a new one (Gateway.procs).
type processorSet struct {
	global *process.Chain
	inputs map[string]*process.Chain
	cfg    process.Config // what it was built from
}

// compileProcessors builds the set; errors name the key in the file
// ("processors.inputs.syslog[1].redact.regex: ...").
func compileProcessors(c process.Config) (*processorSet, error) {
	var errs []error
	s := &processorSet{inputs: map[string]*process.Chain{}, cfg: c}
	add := func(key string, steps []process.Step) *process.Chain {
		ch, err := process.Compile(steps)
		for _, e := range flattenErrors(err) {
			errs = append(errs, fmt.Errorf("%s%w", key, e))
		}
		return ch
	}
	s.global = add("processors.global", c.Global)
	for _, in := range sortedKeys(c.Inputs) {
		s.inputs[in] = add("processors.inputs."+in, c.Inputs[in])
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return s, nil
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// inputNames lists the names processors.inputs may use, one per input
// configured: files.<name>, modbus.<bus>, lines.<name>, syslog, audit,
// integrity.
func (c *Config) inputNames() []string {
	var out []string
	for _, f := range c.Inputs.Files {
		out = append(out, "files."+f.Name)
	}
	for _, b := range c.Inputs.Modbus.Buses {
		out = append(out, "modbus."+b.Name)
	}
	for _, l := range c.Inputs.Lines {
		out = append(out, "lines."+l.Name)
	}
	if c.Inputs.Syslog != nil {
		out = append(out, "syslog")
	}
	if c.Inputs.Audit != nil {
		out = append(out, "audit")
	}
	if c.Inputs.Integrity != nil {
		out = append(out, "integrity")
	}
	return out
}

// validateProcessors checks the section against the inputs configured.
func (c *Config) validateProcessors() []error {
	var errs []error
	if _, err := compileProcessors(c.Processors); err != nil {
		errs = append(errs, flattenErrors(err)...)
	}
	names := c.inputNames()
	for _, in := range sortedKeys(c.Processors.Inputs) {
		if !slices.Contains(names, in) {
			known := strings.Join(names, ", ")
			if known == "" {
				known = "no input is configured"
			}
			errs = append(errs, fmt.Errorf("processors.inputs.%s: no such input (%s)", in, known))
		}
	}
	return errs
}

// processorWarnings are what `weir test config` tells of the section:
// the steps that may drop critical records.
func (c *Config) processorWarnings() []string {
	var out []string
	for _, w := range process.Warnings(c.Processors.Global) {
		out = append(out, "processors.global"+w)
	}
	for _, in := range sortedKeys(c.Processors.Inputs) {
		for _, w := range process.Warnings(c.Processors.Inputs[in]) {
			out = append(out, "processors.inputs."+in+w)
		}
	}
	return out
}

// apply runs a batch from input (the name processors.inputs uses; "" for
// the gateway's own records) through its input's chain, then the global
// one.
func (s *processorSet) apply(input string, evs []event.Event, orig []int32) []event.Event {
	if s == nil {
		return evs
	}
	if ch := s.inputs[input]; ch != nil {
		evs = ch.Apply(evs, orig)
	}
	return s.global.Apply(evs, orig)
}

// active says whether a batch from input meets any step.
func (s *processorSet) active(input string) bool {
	return s != nil && (s.global.Len() > 0 || s.inputs[input].Len() > 0)
}

// forget tells input's chain and the global one that the batch they
// last passed was not spooled.
func (s *processorSet) forget(input string) {
	if s == nil {
		return
	}
	s.inputs[input].Forget()
	s.global.Forget()
}

// ProcessorChainStatus is one chain's figures in `weir status`.
type ProcessorChainStatus struct {
	Chain string              `json:"chain"` // global, or the input's name
	Steps []process.StepStats `json:"steps"`
}

func (s *processorSet) status() []ProcessorChainStatus {
	if s == nil {
		return nil
	}
	var out []ProcessorChainStatus
	if s.global.Len() > 0 {
		out = append(out, ProcessorChainStatus{Chain: "global", Steps: s.global.Stats()})
	}
	for _, in := range sortedKeys(s.inputs) {
		if s.inputs[in].Len() > 0 {
			out = append(out, ProcessorChainStatus{Chain: in, Steps: s.inputs[in].Stats()})
		}
	}
	return out
}

// ReloadProcessors takes a new processors section. A chain whose steps
// did not change is kept as it is, with its counts, sample counts and
// deadband state; a changed or new chain starts afresh (its deadbands
// report the next reading at once). An invalid section changes nothing.
func (g *Gateway) ReloadProcessors(c process.Config) error {
	s, err := compileProcessors(c)
	if err != nil {
		return err
	}
	kept := 0
	if old := g.procs.Load(); old != nil {
		if reflect.DeepEqual(old.cfg.Global, c.Global) {
			s.global = old.global
			kept++
		}
		for in, ch := range old.inputs {
			if _, ok := s.inputs[in]; ok && reflect.DeepEqual(old.cfg.Inputs[in], c.Inputs[in]) {
				s.inputs[in] = ch
				kept++
			}
		}
	}
	g.procs.Store(s)
	g.log.Info("processors loaded", "global", s.global.Len(), "inputs", len(s.inputs), "chains_kept", kept)
	return nil
}

// processorsReloader takes the processors section on a reload in place:
// no input restarts for it.
type processorsReloader struct{ g *Gateway }

func (r processorsReloader) CheckReload(c process.Config) error {
	_, err := compileProcessors(c)
	return err
}

func (r processorsReloader) Reload(_ context.Context, c process.Config) error {
	return r.g.ReloadProcessors(c)
}

// processorsCollector reads the chains' counts once per scrape.
type processorsCollector struct{ g *Gateway }

var (
	processorLabels  = []string{"chain", "step", "type"}
	descProcIn       = prometheus.NewDesc("weir_processor_in_records_total", "Records a processor step was given, by chain (global or input), step index and type.", processorLabels, nil)
	descProcOut      = prometheus.NewDesc("weir_processor_out_records_total", "Records a processor step passed on.", processorLabels, nil)
	descProcDropped  = prometheus.NewDesc("weir_processor_dropped_records_total", "Records a processor step dropped (drop, keep, sample, deadband).", processorLabels, nil)
	descProcModified = prometheus.NewDesc("weir_processor_changed_records_total", "Records a processor step changed.", processorLabels, nil)
)

func (processorsCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descProcIn, descProcOut, descProcDropped, descProcModified} {
		ch <- d
	}
}

func (c processorsCollector) Collect(ch chan<- prometheus.Metric) {
	for _, cs := range c.g.procs.Load().status() {
		for _, s := range cs.Steps {
			l := []string{cs.Chain, strconv.Itoa(s.Index), s.Type}
			ch <- prometheus.MustNewConstMetric(descProcIn, prometheus.CounterValue, float64(s.In), l...)
			ch <- prometheus.MustNewConstMetric(descProcOut, prometheus.CounterValue, float64(s.Out), l...)
			ch <- prometheus.MustNewConstMetric(descProcDropped, prometheus.CounterValue, float64(s.Dropped), l...)
			ch <- prometheus.MustNewConstMetric(descProcModified, prometheus.CounterValue, float64(s.Changed), l...)
		}
	}
}

// processorTelemetry is the chains' counts since they were loaded, a
// field per step and count (syslog.0.drop.dropped), for the head-end.
func processorTelemetry(chains []ProcessorChainStatus) (event.Event, bool) {
	if len(chains) == 0 {
		return event.Event{}, false
	}
	ev := event.Event{Source: "weir:processors", Kind: event.KindTelemetry, Severity: event.SevInfo, Message: "processors"}
	for _, c := range chains {
		for _, s := range c.Steps {
			k := fmt.Sprintf("%s.%d.%s.", c.Chain, s.Index, s.Type)
			ev.Fields = append(ev.Fields, event.Uint(k+"in", s.In), event.Uint(k+"out", s.Out),
				event.Uint(k+"dropped", s.Dropped), event.Uint(k+"changed", s.Changed))
		}
	}
	return ev, true
}
