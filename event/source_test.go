package event

import (
	"strings"
	"testing"
)

func TestCheckSourceName(t *testing.T) {
	for _, tc := range []struct {
		name, want string
	}{
		{"app", ""},
		{"pump-3.station_A", ""},
		{strings.Repeat("a", 64), ""},
		{strings.Repeat("a", 65), "longer than 64"},
		{"sys log", "may hold only"},
		{"gps/1", "may hold only"},
		{"flöw", "may hold only"},
	} {
		err := CheckSourceName(tc.name)
		if tc.want == "" && err != nil || tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)) {
			t.Errorf("CheckSourceName(%q) = %v, want %q", tc.name, err, tc.want)
		}
	}
}
