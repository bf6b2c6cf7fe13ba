package event

import (
	"math"
	"strconv"
)

// Str makes a string field.
func Str(key, v string) Field { return Field{Key: key, Value: Value{Type: TypeString, Str: v}} }

// Int makes a signed integer field.
func Int(key string, v int64) Field {
	return Field{Key: key, Value: Value{Type: TypeInt, Num: uint64(v)}}
}

// Uint makes an unsigned integer field.
func Uint(key string, v uint64) Field { return Field{Key: key, Value: Value{Type: TypeUint, Num: v}} }

// Float makes a floating-point field.
func Float(key string, v float64) Field {
	return Field{Key: key, Value: Value{Type: TypeFloat, Num: math.Float64bits(v)}}
}

// Bool makes a boolean field.
func Bool(key string, v bool) Field {
	var n uint64
	if v {
		n = 1
	}
	return Field{Key: key, Value: Value{Type: TypeBool, Num: n}}
}

// Bytes makes a raw-bytes field (a failed frame, a binary register block).
func Bytes(key string, v []byte) Field {
	return Field{Key: key, Value: Value{Type: TypeBytes, Str: string(v)}}
}

// Int returns the value as int64 (TypeInt).
func (v Value) Int() int64 { return int64(v.Num) }

// Float returns the value as float64 (TypeFloat).
func (v Value) Float() float64 { return math.Float64frombits(v.Num) }

// Bool returns the value as bool (TypeBool).
func (v Value) Bool() bool { return v.Num != 0 }

// String renders the value for people; bytes are shown as hex.
func (v Value) String() string {
	switch v.Type {
	case TypeString:
		return v.Str
	case TypeInt:
		return strconv.FormatInt(v.Int(), 10)
	case TypeUint:
		return strconv.FormatUint(v.Num, 10)
	case TypeFloat:
		return strconv.FormatFloat(v.Float(), 'g', -1, 64)
	case TypeBool:
		return strconv.FormatBool(v.Bool())
	case TypeBytes:
		const hexdigits = "0123456789abcdef"
		b := make([]byte, 0, 2*len(v.Str))
		for i := 0; i < len(v.Str); i++ {
			b = append(b, hexdigits[v.Str[i]>>4], hexdigits[v.Str[i]&0xf])
		}
		return string(b)
	}
	return "?"
}
