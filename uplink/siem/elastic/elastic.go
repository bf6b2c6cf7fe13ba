package elastic

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"strings"
	"time"

	"github.com/weirgw/weir/event"
	"github.com/weirgw/weir/uplink/siem"
	"github.com/weirgw/weir/uplink/siem/deadletter"
	"github.com/weirgw/weir/uplink/siem/httpout"
)

// Options configure a Target.
type Options struct {
	Name     string // the output's name, in dead letters
	URL      string // base URL, e.g. https://es.example.net:9200
	Index    string // "{date}" is the record's UTC date, yyyy.mm.dd
	Username string
	Password string
	APIKey   string // sent as "ApiKey <key>" (the base64 id:key Elasticsearch gives)
	Gzip     bool
	Client   *http.Client
	Encoding siem.EncodingConfig
	Dead     *deadletter.File
	// Item retries within one Deliver.
	RetryMin, RetryMax time.Duration
}

// Target is an Elasticsearch cluster.
type Target struct {
	opt  Options
	enc  siem.Encoder
	hdr  http.Header
	body []byte
	// dead holds the ids set aside during the batch being delivered, so a
	// batch sent again whole does not set them aside twice.
	dead map[string]bool
}

// New builds a target.
func New(opt Options) (*Target, error) {
	enc, err := siem.New(siem.FormatECS, opt.Encoding)
	if err != nil {
		return nil, err
	}
	if opt.Dead == nil {
		return nil, errors.New("elastic: a dead-letter file is required")
	}
	hdr := http.Header{"Content-Type": {"application/x-ndjson"}}
	switch {
	case opt.APIKey != "":
		hdr.Set("Authorization", "ApiKey "+opt.APIKey)
	case opt.Username != "":
		hdr.Set("Authorization", "Basic "+base64.StdEncoding.EncodeToString([]byte(opt.Username+":"+opt.Password)))
	}
	opt.URL = strings.TrimSuffix(opt.URL, "/")
	if opt.RetryMin <= 0 {
		opt.RetryMin = 500 * time.Millisecond
	}
	opt.RetryMax = max(opt.RetryMax, opt.RetryMin)
	return &Target{opt: opt, enc: enc, hdr: hdr, dead: map[string]bool{}}, nil
}

// IndexName is the index a record goes to.
func IndexName(pattern string, e *event.Event) string {
	if !strings.Contains(pattern, "{date}") {
		return pattern
	}
	return strings.ReplaceAll(pattern, "{date}", time.Unix(0, e.Time).UTC().Format("2006.01.02"))
}

type bulkResponse struct {
	Errors bool                         `json:"errors"`
	Items  []map[string]bulkItemOutcome `json:"items"`
}

type bulkItemOutcome struct {
	ID     string          `json:"_id"`
	Status int             `json:"status"`
	Error  json.RawMessage `json:"error"`
}

// StatusError is a whole request the cluster refused.
type StatusError struct {
	Status int
	Body   string
}

func (e *StatusError) Error() string {
	return fmt.Sprintf("elastic: _bulk answered %d: %s", e.Status, e.Body)
}

// Deliver indexes the batch and returns once every record is held or set
// aside in the dead-letter file.
func (t *Target) Deliver(ctx context.Context, evs []*event.Event) error {
	pending := evs
	backoff := t.opt.RetryMin
	for {
		retry, err := t.send(ctx, pending)
		if err != nil {
			return err
		}
		if len(retry) == 0 {
			clear(t.dead)
			return nil
		}
		pending = retry
		wait := backoff/2 + rand.N(backoff/2+1)
		tm := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			tm.Stop()
			return ctx.Err()
		case <-tm.C:
		}
		backoff = min(2*backoff, t.opt.RetryMax)
	}
}

// send posts one _bulk request and returns the records to send again.
func (t *Target) send(ctx context.Context, evs []*event.Event) ([]*event.Event, error) {
	t.body = t.body[:0]
	var offsets []int // where each record's document starts, for dead letters
	var sent []*event.Event
	for _, e := range evs {
		id := siem.DedupeID(e)
		if t.dead[id] {
			continue
		}
		t.body = append(t.body, `{"create":{"_index":`...)
		t.body = appendJSONString(t.body, IndexName(t.opt.Index, e))
		t.body = append(t.body, `,"_id":`...)
		t.body = appendJSONString(t.body, id)
		t.body = append(t.body, "}}\n"...)
		offsets = append(offsets, len(t.body))
		t.body = t.enc.Append(t.body, e)
		t.body = append(t.body, '\n')
		sent = append(sent, e)
	}
	if len(sent) == 0 {
		return nil, nil
	}
	status, resp, err := httpout.Post(ctx, t.opt.Client, t.opt.URL+"/_bulk", t.hdr, t.body, t.opt.Gzip, 64<<20)
	if err != nil {
		return nil, fmt.Errorf("elastic: _bulk of %d records: %w", len(sent), err)
	}
	if status < 200 || status > 299 {
		return nil, &StatusError{Status: status, Body: clip(string(resp))}
	}
	var br bulkResponse
	if err := json.Unmarshal(resp, &br); err != nil {
		return nil, fmt.Errorf("elastic: _bulk response: %w", err)
	}
	if len(br.Items) != len(sent) {
		return nil, fmt.Errorf("elastic: _bulk answered %d items for %d records", len(br.Items), len(sent))
	}
	var retry []*event.Event
	for i, item := range br.Items {
		var o bulkItemOutcome
		for _, v := range item {
			o = v
		}
		e := sent[i]
		switch s := o.Status; {
		case s >= 200 && s <= 299, s == http.StatusConflict:
			// held (409: a create of an id that is there already)
		case s == http.StatusTooManyRequests || s >= 500 || s == 0:
			retry = append(retry, e)
		default:
			id := siem.DedupeID(e)
			end := len(t.body)
			if i+1 < len(offsets) {
				end = strings.LastIndexByte(string(t.body[:offsets[i+1]-1]), '\n')
			}
			doc := t.body[offsets[i]:max(offsets[i], end)]
			if err := t.opt.Dead.Write(t.opt.Name, id, s, string(o.Error), e, doc); err != nil {
				return nil, err
			}
			t.dead[id] = true
		}
	}
	return retry, nil
}

// Close does nothing: the client's idle connections close on their own.
func (t *Target) Close() error { return nil }

func appendJSONString(b []byte, s string) []byte {
	q, _ := json.Marshal(s)
	return append(b, q...)
}

func clip(s string) string {
	if len(s) > 300 {
		return s[:300] + "..."
	}
	return s
}
