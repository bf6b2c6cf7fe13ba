package siem

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"unicode/utf8"
)

// ParseECS reads one ECS JSON object strictly: UTF-8, exactly one
// object, nothing after it, numbers kept as json.Number.
func ParseECS(b []byte) (map[string]any, error) {
	if !utf8.Valid(b) {
		return nil, errors.New("ecs: not UTF-8")
	}
	d := json.NewDecoder(bytes.NewReader(b))
	d.UseNumber()
	var m map[string]any
	if err := d.Decode(&m); err != nil {
		return nil, fmt.Errorf("ecs: %w", err)
	}
	if m == nil {
		return nil, errors.New("ecs: not an object")
	}
	if _, err := d.Token(); err != io.EOF {
		return nil, errors.New("ecs: more after the object")
	}
	return m, nil
}

// Lookup returns the value at a dotted path of nested objects ("event.id").
func Lookup(m map[string]any, path string) (any, bool) {
	var cur any = m
	for len(path) > 0 {
		obj, ok := cur.(map[string]any)
		if !ok {
			return nil, false
		}
		key := path
		if i := bytes.IndexByte([]byte(path), '.'); i >= 0 && key != "@timestamp" {
			key, path = path[:i], path[i+1:]
		} else {
			path = ""
		}
		if cur, ok = obj[key]; !ok {
			return nil, false
		}
	}
	return cur, true
}
