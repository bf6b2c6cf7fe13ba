package process

import (
	"bytes"
	"encoding/json"
	"math"
	"strconv"
	"strings"

	"github.com/weirgw/weir/event"
)

// maxJSONDepth bounds the objects flattened into dotted keys; deeper
// ones are kept as their JSON text.
const maxJSONDepth = 8

// parseJSON reads a JSON object (leading spaces allowed) into fields:
// nested objects as dotted keys, strings, numbers (an integer when it is
// one), booleans; arrays and objects too deep as their compact JSON text;
// nulls are left out. Text that is not one JSON object adds nothing.
func parseJSON(s string, add func(string, event.Value) bool) bool {
	t := strings.TrimSpace(s)
	if !strings.HasPrefix(t, "{") {
		return false
	}
	var top map[string]json.RawMessage
	if err := json.Unmarshal([]byte(t), &top); err != nil {
		return false
	}
	_, ok := flattenJSON([]byte(t), "", 0, add)
	return ok
}

// flattenJSON walks one object in its order. It returns false when add
// refused more.
func flattenJSON(obj []byte, prefix string, depth int, add func(string, event.Value) bool) (bool, bool) {
	dec := json.NewDecoder(bytes.NewReader(obj))
	dec.UseNumber()
	if _, err := dec.Token(); err != nil { // {
		return true, false
	}
	for dec.More() {
		tk, err := dec.Token()
		if err != nil {
			return true, false
		}
		key, _ := tk.(string)
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return true, false
		}
		full := prefix + key
		if !validKey(full) {
			continue
		}
		v, nested, skip := jsonValue(raw)
		if skip {
			continue
		}
		if nested && depth < maxJSONDepth {
			if more, _ := flattenJSON(raw, full+".", depth+1, add); !more {
				return false, true
			}
			continue
		}
		if !add(full, v) {
			return false, true
		}
	}
	return true, true
}

// jsonValue is a value's field; nested says it is an object.
func jsonValue(raw json.RawMessage) (v event.Value, nested, skip bool) {
	switch raw[0] {
	case '{':
		var b bytes.Buffer
		if json.Compact(&b, raw) != nil {
			return v, false, true
		}
		return str(b.String()), true, false
	case '[':
		var b bytes.Buffer
		if json.Compact(&b, raw) != nil {
			return v, false, true
		}
		return str(b.String()), false, false
	case '"':
		var s string
		if json.Unmarshal(raw, &s) != nil {
			return v, false, true
		}
		return str(s), false, false
	case 't', 'f':
		return event.Bool("", raw[0] == 't').Value, false, false
	case 'n':
		return v, false, true
	}
	n := string(raw)
	if i, err := strconv.ParseInt(n, 10, 64); err == nil {
		return event.Int("", i).Value, false, false
	}
	f, err := strconv.ParseFloat(n, 64)
	if err != nil || math.IsInf(f, 0) {
		return str(n), false, false
	}
	return event.Float("", f).Value, false, false
}
