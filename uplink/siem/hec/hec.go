package hec

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/weirgw/weir/event"
	"github.com/weirgw/weir/uplink/siem"
	"github.com/weirgw/weir/uplink/siem/deadletter"
	"github.com/weirgw/weir/uplink/siem/httpout"
)

// Options configure a Target.
type Options struct {
	Name       string // the output's name, in dead letters
	URL        string // base URL, e.g. https://splunk.example.net:8088
	Token      string
	Index      string // empty: the token's default
	Source     string
	Sourcetype string
	Format     siem.Format
	Encoding   siem.EncodingConfig
	Gzip       bool
	Ack        bool
	AckTimeout time.Duration
	Client     *http.Client
	Dead       *deadletter.File
}

// Target is a Splunk HEC endpoint.
type Target struct {
	opt     Options
	enc     siem.Encoder
	hdr     http.Header
	channel string
	body    []byte
	msg     []byte
}

// New builds a target with a fresh channel id (used for acknowledgement).
func New(opt Options) (*Target, error) {
	enc, err := siem.New(opt.Format, opt.Encoding)
	if err != nil {
		return nil, err
	}
	if opt.Dead == nil {
		return nil, errors.New("hec: a dead-letter file is required")
	}
	if opt.AckTimeout <= 0 {
		opt.AckTimeout = time.Minute
	}
	opt.URL = strings.TrimSuffix(opt.URL, "/")
	t := &Target{opt: opt, enc: enc, channel: newChannel(),
		hdr: http.Header{"Authorization": {"Splunk " + opt.Token}, "Content-Type": {"application/json"}}}
	t.hdr.Set("X-Splunk-Request-Channel", t.channel)
	return t, nil
}

// newChannel is a random UUID (version 4), as HEC wants channels.
func newChannel() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:])
}

// Channel is the channel id this target posts on.
func (t *Target) Channel() string { return t.channel }

// StatusError is an answer other than 200.
type StatusError struct {
	Status int
	Body   string
}

func (e *StatusError) Error() string { return fmt.Sprintf("hec: answered %d: %s", e.Status, e.Body) }

// Deliver posts the batch and, with acknowledgement on, waits until it
// is indexed.
func (t *Target) Deliver(ctx context.Context, evs []*event.Event) error {
	err := t.post(ctx, evs)
	var se *StatusError
	if !errors.As(err, &se) || se.Status != http.StatusBadRequest {
		return err
	}
	// One event HEC will never take fails the whole request: find it by
	// sending them one by one; the ones refused alone are set aside.
	for _, e := range evs {
		err := t.post(ctx, []*event.Event{e})
		if errors.As(err, &se) && se.Status == http.StatusBadRequest {
			if derr := t.opt.Dead.Write(t.opt.Name, siem.DedupeID(e), se.Status, se.Body, e, t.appendEvent(nil, e)); derr != nil {
				return derr
			}
			continue
		}
		if err != nil {
			return err
		}
	}
	return nil
}

type postAnswer struct {
	Text  string `json:"text"`
	Code  int    `json:"code"`
	AckID *int64 `json:"ackId"`
}

func (t *Target) post(ctx context.Context, evs []*event.Event) error {
	t.body = t.body[:0]
	for _, e := range evs {
		t.body = t.appendEvent(t.body, e)
		t.body = append(t.body, '\n')
	}
	status, resp, err := httpout.Post(ctx, t.opt.Client, t.opt.URL+"/services/collector/event", t.hdr, t.body, t.opt.Gzip, 1<<20)
	if err != nil {
		return fmt.Errorf("hec: post %d events: %w", len(evs), err)
	}
	if status != http.StatusOK {
		return &StatusError{Status: status, Body: clip(string(resp))}
	}
	if !t.opt.Ack {
		return nil
	}
	var a postAnswer
	if err := json.Unmarshal(resp, &a); err != nil || a.AckID == nil {
		return fmt.Errorf("hec: acknowledgement is on but the answer names no ackId (is it enabled on the token?): %s", clip(string(resp)))
	}
	return t.waitAck(ctx, *a.AckID)
}

// waitAck polls /services/collector/ack until the ackId is indexed or
// ack_timeout passes.
func (t *Target) waitAck(ctx context.Context, id int64) error {
	deadline := time.Now().Add(t.opt.AckTimeout)
	body := []byte(`{"acks":[` + strconv.FormatInt(id, 10) + `]}`)
	wait := 100 * time.Millisecond
	for {
		status, resp, err := httpout.Post(ctx, t.opt.Client, t.opt.URL+"/services/collector/ack?channel="+t.channel, t.hdr, body, false, 1<<20)
		if err == nil && status == http.StatusOK {
			var a struct {
				Acks map[string]bool `json:"acks"`
			}
			if json.Unmarshal(resp, &a) == nil && a.Acks[strconv.FormatInt(id, 10)] {
				return nil
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("hec: ackId %d not indexed within %s; sending the batch again (its records may be indexed twice)", id, t.opt.AckTimeout)
		}
		tm := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			tm.Stop()
			return ctx.Err()
		case <-tm.C:
		}
		wait = min(2*wait, 2*time.Second)
	}
}

// appendEvent writes one HEC event: time in seconds with microseconds,
// host, source, sourcetype, index, the encoded record, indexed fields.
func (t *Target) appendEvent(b []byte, e *event.Event) []byte {
	b = append(b, `{"time":`...)
	b = strconv.AppendFloat(b, float64(e.Time/1000)/1e6, 'f', 6, 64)
	if e.Host != "" {
		b = append(b, `,"host":`...)
		b = appendJSON(b, siem.Sanitize(e.Host))
	}
	src := t.opt.Source
	if src == "" {
		src = e.Source
	}
	b = append(b, `,"source":`...)
	b = appendJSON(b, siem.Sanitize(src))
	if t.opt.Sourcetype != "" {
		b = append(b, `,"sourcetype":`...)
		b = appendJSON(b, t.opt.Sourcetype)
	}
	if t.opt.Index != "" {
		b = append(b, `,"index":`...)
		b = appendJSON(b, t.opt.Index)
	}
	b = append(b, `,"event":`...)
	if t.enc.Format() == siem.FormatECS {
		b = t.enc.Append(b, e)
	} else {
		t.msg = t.enc.Append(t.msg[:0], e)
		b = appendJSON(b, string(t.msg))
	}
	b = append(b, `,"fields":{"weir_id":`...)
	b = appendJSON(b, siem.DedupeID(e))
	b = append(b, `,"weir_gateway":`...)
	b = appendJSON(b, e.Gateway)
	b = append(b, `,"weir_seq":"`...)
	b = strconv.AppendUint(b, e.Seq, 10)
	return append(b, `"}}`...)
}

// Close does nothing.
func (t *Target) Close() error { return nil }

func appendJSON(b []byte, s string) []byte {
	q, _ := json.Marshal(s)
	return append(b, q...)
}

func clip(s string) string {
	if len(s) > 300 {
		return s[:300] + "..."
	}
	return s
}
