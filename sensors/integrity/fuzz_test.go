package integrity

import (
	"testing"
)

// FuzzDecodeEntry: a baseline entry read back from disk never panics the
// decoder, and whatever decodes encodes to bytes that decode to the same
// entry (varints may come overlong, so the bytes themselves may differ).
func FuzzDecodeEntry(f *testing.F) {
	for _, e := range sampleEntries() {
		e.Mode &= modeBits
		f.Add(appendEntry(nil, &e))
	}
	f.Add([]byte{})
	f.Add([]byte{1})
	f.Fuzz(func(t *testing.T, b []byte) {
		e, err := decodeEntry(b)
		if err != nil {
			return
		}
		again := appendEntry(nil, &e)
		e2, err := decodeEntry(again)
		if err != nil || e2 != e {
			t.Fatalf("%x decodes to %+v, which encodes to %x, which decodes to %+v, %v", b, e, again, e2, err)
		}
	})
}
