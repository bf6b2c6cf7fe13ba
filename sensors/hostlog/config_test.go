package hostlog

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestValidate(t *testing.T) {
	valid := func(f func(*FileConfig)) FileConfig {
		c := DefaultFileConfig()
		c.Name, c.Paths = "syslog", []string{"/var/log/syslog", "/var/log/*.log"}
		f(&c)
		return c
	}
	tests := []struct {
		name string
		cfg  FileConfig
		want []string // substrings of the error, none for valid
	}{
		{"defaults", valid(func(*FileConfig) {}), nil},
		{"zero values take defaults", FileConfig{Name: "x", Paths: []string{"/a"}}, nil},
		{"beginning", valid(func(c *FileConfig) { c.StartAt = "beginning" }), nil},
		{"bulk", valid(func(c *FileConfig) { c.Priority = "bulk" }), nil},
		{"no name", valid(func(c *FileConfig) { c.Name = "" }), []string{"name: must not be empty"}},
		{"bad name", valid(func(c *FileConfig) { c.Name = "sys log" }), []string{`name: "sys log" may hold only`}},
		{"no paths", valid(func(c *FileConfig) { c.Paths = nil }), []string{"paths: must list at least one glob"}},
		{"empty glob", valid(func(c *FileConfig) { c.Paths = []string{""} }), []string{"paths: a glob is empty"}},
		{"malformed glob", valid(func(c *FileConfig) { c.Paths = []string{"/var/log/["} }), []string{`paths: glob "/var/log/[" is malformed`}},
		{"malformed glob after a literal", valid(func(c *FileConfig) { c.Paths = []string{"/x/a[-]"} }), []string{`paths: glob "/x/a[-]" is malformed`}},
		{"start_at", valid(func(c *FileConfig) { c.StartAt = "middle" }), []string{`start_at: "middle" is not end or beginning`}},
		{"poll_interval", valid(func(c *FileConfig) { c.PollInterval = -time.Second }), []string{"poll_interval: -1s is negative"}},
		{"negative max_line_bytes", valid(func(c *FileConfig) { c.MaxLineBytes = -1 }), []string{"max_line_bytes: -1 is negative"}},
		{"huge max_line_bytes", valid(func(c *FileConfig) { c.MaxLineBytes = 1 << 30 }), []string{"max_line_bytes: 1073741824 is more than"}},
		{"priority", valid(func(c *FileConfig) { c.Priority = "urgent" }), []string{`priority: "urgent" is not normal, critical or bulk`}},
		{"poll", valid(func(c *FileConfig) { c.Watch = "poll" }), nil},
		{"watch", valid(func(c *FileConfig) { c.Watch = "fanotify" }), []string{`watch: "fanotify" is not auto or poll`}},
		{"rescan_interval", valid(func(c *FileConfig) { c.RescanInterval = -time.Second }), []string{"rescan_interval: -1s is negative"}},
		{"close_inactive", valid(func(c *FileConfig) { c.CloseInactive = -time.Second }), []string{"close_inactive: -1s is negative"}},
		{"multiline", valid(func(c *FileConfig) { c.Multiline.StartPattern = `^\d{4}-` }), nil},
		{"multiline.start_pattern", valid(func(c *FileConfig) { c.Multiline.StartPattern = `^(\d` }),
			[]string{`multiline.start_pattern: "^(\\d" is not a regular expression`}},
		{"multiline.max_lines", valid(func(c *FileConfig) { c.Multiline.MaxLines = -1 }), []string{"multiline.max_lines: -1 is negative"}},
		{"multiline.max_bytes", valid(func(c *FileConfig) { c.Multiline.MaxBytes = 1 << 20 }), []string{"multiline.max_bytes: 1048576 is more than"}},
		{"multiline.timeout", valid(func(c *FileConfig) { c.Multiline.Timeout = -time.Second }), []string{"multiline.timeout: -1s is negative"}},
		{"several at once", FileConfig{StartAt: "x", Priority: "y"}, []string{"name:", "paths:", "start_at:", "priority:"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.cfg.Validate()
			if tt.want == nil {
				require.NoError(t, err)
				return
			}
			require.Error(t, err)
			for _, w := range tt.want {
				require.Contains(t, err.Error(), w)
			}
		})
	}
}

func TestNewTailerAppliesDefaults(t *testing.T) {
	tl, err := NewTailer(FileConfig{Name: "x", Paths: []string{"rel/*.log"}}, newFakeSpool(), nil)
	require.NoError(t, err)
	require.Equal(t, DefaultPollInterval, tl.cfg.PollInterval)
	require.Equal(t, DefaultMaxLineBytes, tl.cfg.MaxLineBytes)
	require.Equal(t, StartAtEnd, tl.cfg.StartAt)
	require.Equal(t, WatchAuto, tl.cfg.Watch)
	require.Equal(t, DefaultRescanInterval, tl.cfg.RescanInterval)
	require.Equal(t, DefaultCloseInactive, tl.cfg.CloseInactive)
	require.Equal(t, MultilineConfig{MaxLines: 500, MaxBytes: 64 << 10, Timeout: 5 * time.Second}, tl.cfg.Multiline)
	require.Nil(t, tl.start, "multiline is off without a start pattern")
	require.True(t, len(tl.globs) == 1 && tl.globs[0][0] == '/', "globs are made absolute: %q", tl.globs)

	_, err = NewTailer(FileConfig{Name: "x"}, newFakeSpool(), nil)
	require.ErrorContains(t, err, "hostlog: paths:")
	_, err = NewTailer(FileConfig{Name: "x", Paths: []string{"/a"}}, nil, nil)
	require.ErrorContains(t, err, "no checkpoint store")
}

func TestRetryWait(t *testing.T) {
	ms := time.Millisecond
	require.Equal(t, 10*ms, retryWait(10*ms, 1))
	require.Equal(t, 20*ms, retryWait(10*ms, 2))
	require.Equal(t, 40*ms, retryWait(10*ms, 3))
	require.Equal(t, maxRetryWait, retryWait(10*ms, 100))
	require.Equal(t, time.Minute, retryWait(time.Minute, 5), "never shorter than the poll interval")
}
