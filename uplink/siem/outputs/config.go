package outputs

import (
	"bytes"
	_ "embed"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"path/filepath"
	"time"

	"github.com/weirgw/weir/event"
	"github.com/weirgw/weir/uplink"
	"github.com/weirgw/weir/uplink/siem"
	"github.com/weirgw/weir/uplink/siem/deadletter"
	"github.com/weirgw/weir/uplink/siem/elastic"
	"github.com/weirgw/weir/uplink/siem/hec"
	"github.com/weirgw/weir/uplink/siem/httpout"
	"github.com/weirgw/weir/uplink/siem/output"
	"github.com/weirgw/weir/uplink/siem/syslogtls"
)

// Types of output.
const (
	TypeSyslog        = "syslog"
	TypeHEC           = "hec"
	TypeElasticsearch = "elasticsearch"
)

// Config is one output: a list item of the gateway's outputs (and the
// collector's --output files). Only the section its type names is used.
type Config struct {
	// Name identifies the output in logs, metrics, its spool mark
	// (checkpoint output:<name>) and its dead-letter file.
	Name string `mapstructure:"name" yaml:"name"`
	// Type is syslog (RFC 5425 over mutual TLS), hec (Splunk HTTP Event
	// Collector) or elasticsearch (_bulk; OpenSearch too).
	Type string `mapstructure:"type" yaml:"type"`
	// Format is rfc5424, cef, leef or ecs; elasticsearch takes ecs only.
	Format   string              `mapstructure:"format" yaml:"format"`
	Encoding siem.EncodingConfig `mapstructure:"encoding" yaml:"encoding"`

	BatchMaxRecords int           `mapstructure:"batch_max_records" yaml:"batch_max_records"`
	BatchMaxBytes   int           `mapstructure:"batch_max_bytes" yaml:"batch_max_bytes"`
	FlushInterval   time.Duration `mapstructure:"flush_interval" yaml:"flush_interval"`
	// Timeout bounds a connection, a request, and syslog's wait for the
	// receiver's TCP acknowledgement.
	Timeout  time.Duration `mapstructure:"timeout" yaml:"timeout"`
	RetryMin time.Duration `mapstructure:"retry_min" yaml:"retry_min"`
	RetryMax time.Duration `mapstructure:"retry_max" yaml:"retry_max"`
	// DeadLetter is the file of records the target refused for good (hec,
	// elasticsearch); empty: deadletter/<name>.jsonl in the data directory.
	// At DeadLetterMaxBytes the output stops and retries instead.
	DeadLetter         string `mapstructure:"dead_letter" yaml:"dead_letter"`
	DeadLetterMaxBytes int64  `mapstructure:"dead_letter_max_bytes" yaml:"dead_letter_max_bytes"`

	Syslog        SyslogConfig  `mapstructure:"syslog" yaml:"syslog"`
	HEC           HECConfig     `mapstructure:"hec" yaml:"hec"`
	Elasticsearch ElasticConfig `mapstructure:"elasticsearch" yaml:"elasticsearch"`
}

// SyslogConfig is a syslog-over-TLS receiver.
type SyslogConfig struct {
	Address    string           `mapstructure:"address" yaml:"address"`
	ServerName string           `mapstructure:"server_name" yaml:"server_name"`
	TLS        uplink.TLSConfig `mapstructure:"tls" yaml:"tls"`
}

// HECConfig is a Splunk HTTP Event Collector.
type HECConfig struct {
	URL        string            `mapstructure:"url" yaml:"url"`
	Token      string            `mapstructure:"token" yaml:"token"`
	TokenFile  string            `mapstructure:"token_file" yaml:"token_file"`
	Index      string            `mapstructure:"index" yaml:"index"`
	Source     string            `mapstructure:"source" yaml:"source"`
	Sourcetype string            `mapstructure:"sourcetype" yaml:"sourcetype"`
	Ack        bool              `mapstructure:"ack" yaml:"ack"`
	AckTimeout time.Duration     `mapstructure:"ack_timeout" yaml:"ack_timeout"`
	Gzip       bool              `mapstructure:"gzip" yaml:"gzip"`
	TLS        httpout.TLSConfig `mapstructure:"tls" yaml:"tls"`
}

// ElasticConfig is an Elasticsearch or OpenSearch cluster.
type ElasticConfig struct {
	URL          string            `mapstructure:"url" yaml:"url"`
	Index        string            `mapstructure:"index" yaml:"index"`
	Username     string            `mapstructure:"username" yaml:"username"`
	Password     string            `mapstructure:"password" yaml:"password"`
	PasswordFile string            `mapstructure:"password_file" yaml:"password_file"`
	APIKey       string            `mapstructure:"api_key" yaml:"api_key"`
	APIKeyFile   string            `mapstructure:"api_key_file" yaml:"api_key_file"`
	Gzip         bool              `mapstructure:"gzip" yaml:"gzip"`
	TLS          httpout.TLSConfig `mapstructure:"tls" yaml:"tls"`
}

// DefaultConfig is what an output item's omitted keys take.
func DefaultConfig() Config {
	return Config{Format: string(siem.FormatRFC5424), Encoding: siem.DefaultEncodingConfig(),
		BatchMaxRecords: 500, BatchMaxBytes: 1 << 20, FlushInterval: time.Second, Timeout: 10 * time.Second,
		RetryMin: time.Second, RetryMax: time.Minute, DeadLetterMaxBytes: 256 << 20,
		HEC:           HECConfig{Sourcetype: "weir", Ack: true, AckTimeout: time.Minute, Gzip: true},
		Elasticsearch: ElasticConfig{Index: "weir-{date}", Gzip: true}}
}

//go:embed example.yaml
var exampleYAML []byte

// ExampleYAML is an example outputs section, every key commented.
func ExampleYAML() []byte { return bytes.Clone(exampleYAML) }

// Validate checks the configuration without I/O; errors name the key
// within the item.
func (c Config) Validate() error {
	var errs []error
	add := func(key, format string, a ...any) {
		errs = append(errs, fmt.Errorf("%s: %s", key, fmt.Sprintf(format, a...)))
	}
	if err := event.CheckSourceName(c.Name); err != nil || c.Name == "" {
		add("name", "%q must be 1..64 of letters, digits, '.', '_' and '-'", c.Name)
	}
	f, err := siem.ParseFormat(c.Format)
	if err != nil {
		add("format", "%v", err)
	}
	if err := c.Encoding.Validate(); err != nil {
		for _, e := range flatten(err) {
			errs = append(errs, fmt.Errorf("encoding.%w", e))
		}
	}
	if c.BatchMaxRecords < 1 || c.BatchMaxRecords > 10000 {
		add("batch_max_records", "%d is outside 1..10000", c.BatchMaxRecords)
	}
	if c.BatchMaxBytes < 1024 || c.BatchMaxBytes > 64<<20 {
		add("batch_max_bytes", "%d is outside 1024..67108864", c.BatchMaxBytes)
	}
	for _, d := range []struct {
		key string
		v   time.Duration
	}{{"flush_interval", c.FlushInterval}, {"timeout", c.Timeout}, {"retry_min", c.RetryMin}, {"retry_max", c.RetryMax}} {
		if d.v <= 0 {
			add(d.key, "%s must be positive", d.v)
		}
	}
	if c.RetryMax < c.RetryMin {
		add("retry_max", "%s is below retry_min %s", c.RetryMax, c.RetryMin)
	}
	if c.DeadLetterMaxBytes < 0 {
		add("dead_letter_max_bytes", "%d is negative (0: no bound)", c.DeadLetterMaxBytes)
	}
	checkURL := func(key, u string) {
		p, err := url.Parse(u)
		if u == "" {
			add(key, "required")
		} else if err != nil || (p.Scheme != "https" && p.Scheme != "http") || p.Host == "" {
			add(key, "%q is not an http(s) URL", u)
		}
	}
	switch c.Type {
	case TypeSyslog:
		if _, _, err := net.SplitHostPort(c.Syslog.Address); err != nil {
			add("syslog.address", "%q is not host:port", c.Syslog.Address)
		}
		if err := c.Syslog.TLS.Validate(); err != nil {
			for _, e := range flatten(err) {
				errs = append(errs, fmt.Errorf("syslog.tls.%w", e))
			}
		}
	case TypeHEC:
		checkURL("hec.url", c.HEC.URL)
		if (c.HEC.Token == "") == (c.HEC.TokenFile == "") {
			add("hec.token", "set token or token_file, one of them")
		}
		if c.HEC.AckTimeout <= 0 {
			add("hec.ack_timeout", "%s must be positive", c.HEC.AckTimeout)
		}
	case TypeElasticsearch:
		checkURL("elasticsearch.url", c.Elasticsearch.URL)
		if err == nil && f != siem.FormatECS {
			add("format", "elasticsearch takes ecs only, not %s", f)
		}
		if c.Elasticsearch.Index == "" {
			add("elasticsearch.index", "required")
		}
		e := c.Elasticsearch
		if e.Password != "" && e.PasswordFile != "" {
			add("elasticsearch.password", "set password or password_file, not both")
		}
		if e.APIKey != "" && e.APIKeyFile != "" {
			add("elasticsearch.api_key", "set api_key or api_key_file, not both")
		}
	default:
		add("type", "%q is not syslog, hec or elasticsearch", c.Type)
	}
	return errors.Join(errs...)
}

func flatten(err error) []error {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		var out []error
		for _, e := range j.Unwrap() {
			out = append(out, flatten(e)...)
		}
		return out
	}
	return []error{err}
}

// Batching is the runner's part of c.
func (c Config) Batching() output.Batching {
	return output.Batching{MaxRecords: c.BatchMaxRecords, MaxBytes: c.BatchMaxBytes, Flush: c.FlushInterval,
		RetryMin: c.RetryMin, RetryMax: c.RetryMax}
}

// Build makes the target c names. dataDir places the default dead-letter
// file. It reads secret files, CA files and certificates.
func Build(c Config, dataDir string, log *slog.Logger) (output.Target, error) {
	f, err := siem.ParseFormat(c.Format)
	if err != nil {
		return nil, fmt.Errorf("output %s: format: %w", c.Name, err)
	}
	if c.Type == TypeSyslog {
		return syslogtls.New(syslogtls.Options{Address: c.Syslog.Address, ServerName: c.Syslog.ServerName,
			Identity: uplink.NewIdentity(c.Syslog.TLS), Format: f, Encoding: c.Encoding, Timeout: c.Timeout})
	}
	path := c.DeadLetter
	if path == "" {
		path = filepath.Join(dataDir, "deadletter", c.Name+".jsonl")
	}
	dead, err := deadletter.Open(path, c.DeadLetterMaxBytes)
	if err != nil {
		return nil, fmt.Errorf("output %s: %w", c.Name, err)
	}
	fail := func(key string, err error) (output.Target, error) {
		dead.Close()
		return nil, fmt.Errorf("output %s: %s: %w", c.Name, key, err)
	}
	switch c.Type {
	case TypeHEC:
		h := c.HEC
		token, err := httpout.Secret(h.Token, h.TokenFile)
		if err != nil {
			return fail("hec.token_file", err)
		}
		client, err := httpout.Client(h.TLS, c.Timeout)
		if err != nil {
			return fail("hec", err)
		}
		t, err := hec.New(hec.Options{Name: c.Name, URL: h.URL, Token: token, Index: h.Index, Source: h.Source,
			Sourcetype: h.Sourcetype, Format: f, Encoding: c.Encoding, Gzip: h.Gzip, Ack: h.Ack, AckTimeout: h.AckTimeout,
			Client: client, Dead: dead})
		if err != nil {
			return fail("hec", err)
		}
		return closing{t, dead}, nil
	case TypeElasticsearch:
		e := c.Elasticsearch
		pw, err := httpout.Secret(e.Password, e.PasswordFile)
		if err != nil {
			return fail("elasticsearch.password_file", err)
		}
		key, err := httpout.Secret(e.APIKey, e.APIKeyFile)
		if err != nil {
			return fail("elasticsearch.api_key_file", err)
		}
		client, err := httpout.Client(e.TLS, c.Timeout)
		if err != nil {
			return fail("elasticsearch", err)
		}
		t, err := elastic.New(elastic.Options{Name: c.Name, URL: e.URL, Index: e.Index, Username: e.Username, Password: pw,
			APIKey: key, Gzip: e.Gzip, Client: client, Encoding: c.Encoding, Dead: dead, RetryMin: c.RetryMin, RetryMax: c.RetryMax})
		if err != nil {
			return fail("elasticsearch", err)
		}
		return closing{t, dead}, nil
	}
	return fail("type", fmt.Errorf("%q is not syslog, hec or elasticsearch", c.Type))
}

// closing closes the dead-letter file with its target.
type closing struct {
	output.Target
	dead *deadletter.File
}

func (c closing) Close() error { return errors.Join(c.Target.Close(), c.dead.Close()) }

// DeadLetters is how many records the target set aside since it was
// built.
func (c closing) DeadLetters() uint64 { return c.dead.Count() }

// Redacted is c without its secrets, to print or log.
func (c Config) Redacted() Config {
	if c.HEC.Token != "" {
		c.HEC.Token = "<redacted>"
	}
	if c.Elasticsearch.Password != "" {
		c.Elasticsearch.Password = "<redacted>"
	}
	if c.Elasticsearch.APIKey != "" {
		c.Elasticsearch.APIKey = "<redacted>"
	}
	if c.Syslog.TLS.KeyPEM != "" {
		c.Syslog.TLS.KeyPEM = "<redacted>"
	}
	return c
}
