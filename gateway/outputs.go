package gateway

import (
	"context"
	"fmt"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/weirgw/weir/uplink/sender"
	"github.com/weirgw/weir/uplink/siem/output"
	"github.com/weirgw/weir/uplink/siem/outputs"
)

// siemOutputs are the gateway's SIEM outputs, each with its runner, and
// the gate that lets the spool go only of what every consumer holds.
type siemOutputs struct {
	gate    *output.Gate
	runners []*output.Runner
	targets []output.Target
}

// buildOutputs builds the configured outputs and returns the spool the
// uplink's sender reads: the spool itself when there are no outputs, its
// gate's view otherwise.
func (g *Gateway) buildOutputs(dataDir string) (sender.Spool, error) {
	if len(g.cfg.Outputs) == 0 {
		return g.spool, nil
	}
	o := &siemOutputs{gate: output.NewGate(g.spool, g.log.With("part", "outputs"))}
	var sp sender.Spool = g.spool
	if g.cfg.Uplink.Enabled() {
		sp = o.gate.Consumer("uplink")
	}
	for i, oc := range g.cfg.Outputs {
		v, err := o.gate.Output(oc.Name)
		if err != nil {
			o.close()
			return nil, fmt.Errorf("gateway: outputs[%d]: %w", i, err)
		}
		t, err := outputs.Build(oc, dataDir, g.log)
		if err != nil {
			o.close()
			return nil, fmt.Errorf("gateway: outputs[%d]: %w", i, err)
		}
		o.targets = append(o.targets, t)
		o.runners = append(o.runners, output.NewRunner(oc.Name, t, v, oc.Batching(), g.log.With("part", "output")))
	}
	g.outputs = o
	return sp, nil
}

func (o *siemOutputs) close() {
	for _, t := range o.targets {
		t.Close()
	}
}

// runOutputs starts each output's runner and the gate's keeper of marks.
func (g *Gateway) runOutputs(run func(string, func(context.Context) error)) {
	if g.outputs == nil {
		return
	}
	for _, r := range g.outputs.runners {
		run("output "+r.Status().Name, r.Run)
	}
	run("output marks", func(ctx context.Context) error { return g.outputs.gate.Run(ctx, time.Second) })
}

// validateOutputs checks every outputs item; names must be unique.
func (c *Config) validateOutputs() []error {
	var errs []error
	seen := map[string]int{}
	for i, oc := range c.Outputs {
		key := fmt.Sprintf("outputs[%d]", i)
		if err := oc.Validate(); err != nil {
			for _, e := range flattenErrors(err) {
				errs = append(errs, fmt.Errorf("%s.%w", key, e))
			}
		}
		if j, dup := seen[oc.Name]; dup && oc.Name != "" {
			errs = append(errs, fmt.Errorf("%s.name: %q is already used by outputs[%d]", key, oc.Name, j))
		}
		seen[oc.Name] = i
	}
	return errs
}

// outputsHoldSecrets reports whether an output names a key or holds a
// token or password inline: the file must then not be world-readable.
func (c *Config) outputsHoldSecrets() bool {
	for _, o := range c.Outputs {
		if o.Syslog.TLS.Key != "" || o.Syslog.TLS.KeyPEM != "" || o.HEC.Token != "" || o.Elasticsearch.Password != "" ||
			o.Elasticsearch.APIKey != "" || o.HEC.TLS.Key != "" || o.Elasticsearch.TLS.Key != "" {
			return true
		}
	}
	return false
}

// outputsCollector reads the outputs' figures once per scrape.
type outputsCollector struct{ g *Gateway }

var (
	descOutputDelivered = prometheus.NewDesc("weir_output_delivered_records_total", "Records an output's target holds, by output.", []string{"output"}, nil)
	descOutputFailures  = prometheus.NewDesc("weir_output_failures_total", "Batches an output's target did not take (each is sent again), by output.", []string{"output"}, nil)
	descOutputMark      = prometheus.NewDesc("weir_output_acked_seq", "Highest spool sequence an output delivered, by output.", []string{"output"}, nil)
	descOutputDead      = prometheus.NewDesc("weir_output_dead_letters_total", "Records an output's target refused for good, set aside in its dead-letter file, by output.", []string{"output"}, nil)
	descOutputBad       = prometheus.NewDesc("weir_output_undecodable_records_total", "Spooled records that did not decode, delivered as alerts with their bytes, by output.", []string{"output"}, nil)
)

func (c outputsCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descOutputDelivered, descOutputFailures, descOutputMark, descOutputDead, descOutputBad} {
		ch <- d
	}
}

func (c outputsCollector) Collect(ch chan<- prometheus.Metric) {
	o := c.g.outputs
	if o == nil {
		return
	}
	for i, r := range o.runners {
		st := r.Status()
		ch <- prometheus.MustNewConstMetric(descOutputDelivered, prometheus.CounterValue, float64(st.Delivered), st.Name)
		ch <- prometheus.MustNewConstMetric(descOutputFailures, prometheus.CounterValue, float64(st.Failures), st.Name)
		ch <- prometheus.MustNewConstMetric(descOutputMark, prometheus.GaugeValue, float64(st.Mark), st.Name)
		ch <- prometheus.MustNewConstMetric(descOutputBad, prometheus.CounterValue, float64(st.Undecodable), st.Name)
		if d, ok := o.targets[i].(interface{ DeadLetters() uint64 }); ok {
			ch <- prometheus.MustNewConstMetric(descOutputDead, prometheus.CounterValue, float64(d.DeadLetters()), st.Name)
		}
	}
}
