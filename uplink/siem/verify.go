package siem

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/weirgw/weir/event"
)

// Verify reads msg back with f's strict parser and checks that it gives
// e's fields as the encoder promises them (the package doc's table): the
// message (sanitized, and exact in base64 or, for RFC 5424, byte for
// byte), the dedupe id, sequence, gateway, source, severity, time, time
// quality, checksum and every typed field. It is what the golden, fuzz
// and interop tests hold each encoder to.
func Verify(f Format, cfg EncodingConfig, e *event.Event, msg []byte) error {
	switch f {
	case FormatCEF:
		return verifyCEF(cfg, e, msg)
	case FormatLEEF:
		return verifyLEEF(cfg, e, msg)
	case FormatRFC5424:
		return verifyRFC5424(cfg, e, msg)
	case FormatECS:
		return verifyECS(cfg, e, msg)
	}
	return fmt.Errorf("siem: verify: unknown format %q", f)
}

type checker struct{ errs []error }

func (c *checker) eq(what string, got, want any) {
	if fmt.Sprint(got) != fmt.Sprint(want) {
		c.errs = append(c.errs, fmt.Errorf("%s: got %q, want %q", what, clip(fmt.Sprint(got)), clip(fmt.Sprint(want))))
	}
}

func (c *checker) err() error { return errors.Join(c.errs...) }

// fieldText is a field's value as the text formats give it.
func fieldText(v event.Value) string {
	if v.Type == event.TypeString {
		return Sanitize(v.Str)
	}
	return Sanitize(v.String())
}

// checkFieldsJSON compares the weirFields JSON object with e's fields.
func (c *checker) fieldsJSON(what, js string, fs []event.Field, replace func(string) string) {
	if len(fs) == 0 {
		return
	}
	d := json.NewDecoder(strings.NewReader(js))
	d.UseNumber()
	tok, err := d.Token()
	if err != nil || tok != json.Delim('{') {
		c.errs = append(c.errs, fmt.Errorf("%s: not a JSON object: %q", what, clip(js)))
		return
	}
	for i := 0; d.More(); i++ {
		k, err := d.Token()
		if err != nil || i >= len(fs) {
			c.errs = append(c.errs, fmt.Errorf("%s: field %d: %v", what, i, err))
			return
		}
		var v any
		if err := d.Decode(&v); err != nil {
			c.errs = append(c.errs, fmt.Errorf("%s: field %d: %v", what, i, err))
			return
		}
		f := fs[i]
		c.eq(fmt.Sprintf("%s key %d", what, i), k, replace(Sanitize(f.Key)))
		want := any(fieldText(f.Value))
		switch f.Value.Type {
		case event.TypeString:
			want = replace(fieldText(f.Value))
		case event.TypeInt, event.TypeUint, event.TypeBool:
			// the JSON number or literal is the text
		case event.TypeFloat:
			if n, ok := v.(json.Number); ok {
				got, _ := n.Float64()
				if got != f.Value.Float() {
					c.errs = append(c.errs, fmt.Errorf("%s %s: got %v, want %v", what, f.Key, got, f.Value.Float()))
				}
				continue
			}
		}
		c.eq(what+" "+f.Key, v, want)
	}
}

func verifyCEF(cfg EncodingConfig, e *event.Event, msg []byte) error {
	r, err := ParseCEF(string(msg))
	if err != nil {
		return err
	}
	c := &checker{}
	ci := ClassOf(e).info()
	c.eq("vendor", r.Vendor, cfg.Vendor)
	c.eq("product", r.Product, cfg.Product)
	c.eq("version", r.Version, cfg.Version)
	c.eq("signature", r.SignatureID, ci.signature)
	c.eq("name", r.Name, ci.cefName)
	c.eq("severity", r.Severity, CEFSeverity(e.Severity))
	x := r.Ext
	c.eq("rt", x["rt"], time.Unix(0, e.Time).UnixMilli())
	if e.Host != "" {
		c.eq("dvchost", x["dvchost"], Sanitize(e.Host))
	}
	c.eq("deviceExternalId", x["deviceExternalId"], e.Gateway)
	c.eq("externalId", x["externalId"], DedupeID(e))
	c.eq("cat", x["cat"], ci.cat)
	c.eq("msg", x["msg"], Sanitize(e.Message))
	c.eq("cn1", x["cn1"], e.Seq)
	c.eq("cs1", x["cs1"], Sanitize(e.Source))
	c.eq("cs2", x["cs2"], e.Quality.Source.String()+"/"+e.Quality.State.String())
	c.eq("cs3", x["cs3"], e.Checksum.String())
	c.eq("cs6", x["cs6"], string(appendRFC3339(nil, e.Time, 9)))
	if e.Quality.ErrorBound >= 0 {
		c.eq("cn2", x["cn2"], e.Quality.ErrorBound)
	}
	if p := filePath(e); p != "" {
		c.eq("filePath", x["filePath"], Sanitize(p))
	}
	if ip, ok := peerIP(e); ok {
		c.eq("src", x["src"], ip)
	}
	c.base64("cs5", x, "cs5", e.Message)
	c.fieldsJSON("cs4", x["cs4"], e.Fields, func(s string) string { return s })
	return c.err()
}

// base64 checks that key holds msg exactly when msg is not clean (or
// when need says so), and is absent otherwise.
func (c *checker) base64(what string, m map[string]string, key, msg string, need ...bool) {
	v, ok := m[key]
	want := !clean(msg) || (len(need) > 0 && need[0])
	if ok != want {
		c.errs = append(c.errs, fmt.Errorf("%s: present %v, want %v", what, ok, want))
		return
	}
	if ok {
		b, err := base64.StdEncoding.DecodeString(v)
		if err != nil || string(b) != msg {
			c.errs = append(c.errs, fmt.Errorf("%s: does not decode to the message (%v)", what, err))
		}
	}
}

func verifyLEEF(cfg EncodingConfig, e *event.Event, msg []byte) error {
	r, err := ParseLEEF(string(msg))
	if err != nil {
		return err
	}
	d, _ := ParseDelimiter(cfg.LEEFDelimiter)
	flat := func(s string) string {
		return strings.Map(func(r rune) rune {
			if r == '\n' || r == '\r' || r == rune(d) {
				return ' '
			}
			return r
		}, s)
	}
	c := &checker{}
	ci := ClassOf(e).info()
	c.eq("vendor", r.Vendor, cfg.Vendor)
	c.eq("product", r.Product, cfg.Product)
	c.eq("version", r.Version, cfg.Version)
	c.eq("event id", r.EventID, ci.name)
	c.eq("delimiter", r.Delimiter, d)
	a := r.Attrs
	c.eq("cat", a["cat"], ci.cat)
	c.eq("sev", a["sev"], LEEFSeverity(e.Severity))
	c.eq("devTimeFormat", a["devTimeFormat"], LEEFTimeFormat)
	c.eq("devTime", a["devTime"], time.Unix(0, e.Time).UTC().Format("2006-01-02T15:04:05.000Z"))
	if e.Host != "" {
		c.eq("identHostName", a["identHostName"], flat(Sanitize(e.Host)))
	}
	c.eq("msg", a["msg"], flat(Sanitize(e.Message)))
	c.eq("weirGateway", a["weirGateway"], e.Gateway)
	c.eq("weirId", a["weirId"], DedupeID(e))
	c.eq("weirSeq", a["weirSeq"], e.Seq)
	c.eq("weirSource", a["weirSource"], flat(Sanitize(e.Source)))
	c.eq("weirTime", a["weirTime"], string(appendRFC3339(nil, e.Time, 9)))
	c.eq("weirTimeQuality", a["weirTimeQuality"], e.Quality.Source.String()+"/"+e.Quality.State.String())
	c.eq("weirChecksum", a["weirChecksum"], e.Checksum.String())
	if e.Quality.ErrorBound >= 0 {
		c.eq("weirTimeErrorNs", a["weirTimeErrorNs"], e.Quality.ErrorBound)
	}
	if p := filePath(e); p != "" {
		c.eq("filePath", a["filePath"], flat(Sanitize(p)))
	}
	c.base64("weirMsgBase64", a, "weirMsgBase64", e.Message, hasLineEndOrDelim(e.Message, d))
	// JSON writes tab and line ends as escapes; only another delimiter
	// can be in its text, and became a space.
	c.fieldsJSON("weirFields", a["weirFields"], e.Fields, func(s string) string {
		if d == '\t' {
			return s
		}
		return strings.ReplaceAll(s, string(d), " ")
	})
	return c.err()
}

func verifyRFC5424(cfg EncodingConfig, e *event.Event, msg []byte) error {
	m, err := ParseRFC5424(msg)
	if err != nil {
		return err
	}
	c := &checker{}
	cl := ClassOf(e)
	c.eq("PRI", m.Priority, facility(e, cfg.Facility)*8+sev(e))
	t := time.Unix(0, e.Time)
	c.eq("TIMESTAMP", m.Timestamp.UnixNano(), t.Add(-time.Duration(t.Nanosecond()%1000)).UnixNano())
	host := e.Host
	if host == "" {
		host = e.Gateway
	}
	c.eq("HOSTNAME", m.Hostname, HeaderField(host, maxHostname))
	app, proc := "weir", ""
	if cl == ClassSyslog {
		if a := stringField(e, "app_name"); a != "" {
			app = a
		}
		proc = stringField(e, "procid")
	}
	c.eq("APP-NAME", m.AppName, HeaderField(app, maxAppName))
	c.eq("PROCID", m.ProcID, HeaderField(proc, maxProcID))
	c.eq("MSGID", m.MsgID, cl.String())
	if !bytes.Equal(m.Msg, []byte(e.Message)) {
		c.errs = append(c.errs, fmt.Errorf("MSG: got %q, want %q", clip(string(m.Msg)), clip(e.Message)))
	}
	c.eq("BOM", m.BOM, e.Message != "" && utf8.ValidString(e.Message))
	id := "weir@" + cfg.EnterpriseID
	get := func(name string) string { v, _ := m.Param(id, name); return v }
	c.eq("id", get("id"), DedupeID(e))
	c.eq("gw", get("gw"), e.Gateway)
	c.eq("seq", get("seq"), e.Seq)
	c.eq("src", get("src"), Sanitize(e.Source))
	c.eq("kind", get("kind"), e.Kind)
	c.eq("time", get("time"), string(appendRFC3339(nil, e.Time, 9)))
	c.eq("tqSrc", get("tqSrc"), e.Quality.Source)
	c.eq("tqState", get("tqState"), e.Quality.State)
	c.eq("cs", get("cs"), e.Checksum)
	if e.Quality.ErrorBound >= 0 {
		c.eq("tqErr", get("tqErr"), e.Quality.ErrorBound)
	}
	if len(e.Fields) > 0 {
		var params []SDParam
		for _, el := range m.SD {
			if el.ID == "weirFields@"+cfg.EnterpriseID {
				params = el.Params
			}
		}
		c.eq("fields", len(params), len(e.Fields))
		for i := 0; i < len(params) && i < len(e.Fields); i++ {
			f := e.Fields[i]
			c.eq("field name "+strconv.Itoa(i), params[i].Name, SDName(f.Key))
			c.eq("field "+f.Key, params[i].Value, fieldText(f.Value))
		}
	}
	return c.err()
}

func verifyECS(cfg EncodingConfig, e *event.Event, msg []byte) error {
	m, err := ParseECS(msg)
	if err != nil {
		return err
	}
	c := &checker{}
	ci := ClassOf(e).info()
	get := func(path string) any { v, _ := Lookup(m, path); return v }
	c.eq("@timestamp", get("@timestamp"), string(appendRFC3339(nil, e.Time, 9)))
	c.eq("message", get("message"), Sanitize(e.Message))
	c.eq("event.id", get("event.id"), DedupeID(e))
	c.eq("event.kind", get("event.kind"), ci.ecsKind)
	c.eq("event.category", get("event.category"), []any{ci.ecsCat})
	c.eq("event.severity", get("event.severity"), sev(e))
	c.eq("event.sequence", get("event.sequence"), e.Seq)
	c.eq("event.provider", get("event.provider"), Sanitize(e.Source))
	c.eq("log.level", get("log.level"), e.Severity)
	c.eq("observer.name", get("observer.name"), e.Gateway)
	c.eq("observer.vendor", get("observer.vendor"), cfg.Vendor)
	if e.Host != "" {
		c.eq("host.name", get("host.name"), Sanitize(e.Host))
	}
	if p := filePath(e); p != "" {
		c.eq("log.file.path", get("log.file.path"), Sanitize(p))
	}
	c.eq("weir.seq", get("weir.seq"), e.Seq)
	c.eq("weir.time_quality.source", get("weir.time_quality.source"), e.Quality.Source)
	c.eq("weir.time_quality.state", get("weir.time_quality.state"), e.Quality.State)
	if e.Quality.ErrorBound >= 0 {
		c.eq("weir.time_quality.error_bound_ns", get("weir.time_quality.error_bound_ns"), e.Quality.ErrorBound)
	} else if v := get("weir.time_quality.error_bound_ns"); v != nil {
		c.errs = append(c.errs, fmt.Errorf("weir.time_quality.error_bound_ns: %v, want null", v))
	}
	c.eq("weir.checksum", get("weir.checksum"), e.Checksum)
	b64 := map[string]string{}
	if v, ok := get("weir.message_base64").(string); ok {
		b64["b"] = v
	}
	c.base64("weir.message_base64", b64, "b", e.Message)
	if len(e.Fields) > 0 {
		if fs, ok := get("weir.fields").(map[string]any); ok {
			for _, f := range e.Fields {
				if _, ok := fs[Sanitize(f.Key)]; !ok {
					c.errs = append(c.errs, fmt.Errorf("weir.fields: %q missing", f.Key))
				}
			}
		} else {
			c.errs = append(c.errs, errors.New("weir.fields: missing"))
		}
	}
	return c.err()
}
