package collector

import (
	"errors"
	"fmt"
	"time"

	"github.com/weirgw/weir/uplink"
)

// Config tunes the server. Keys are the weir-collector flags that set
// them; Validate names those.
type Config struct {
	// Before authentication. A TLS handshake holds a handshake slot, not
	// a session: MaxHandshakes at once, MaxHandshakesPerAddr from one
	// source address (an IPv6 /64), each for at most HandshakeTimeout,
	// after which the Hello must arrive within HandshakeTimeout too.
	HandshakeTimeout     time.Duration
	MaxHandshakes        int
	MaxHandshakesPerAddr int

	// After authentication. A session slot is taken once the client
	// certificate names a gateway that is not revoked: MaxConns at once,
	// MaxSessionsPerGateway of one gateway id. A session ends when silent
	// for IdleTimeout, at its certificate's NotAfter, and at MaxSessionAge.
	MaxConns              int
	MaxSessionsPerGateway int
	IdleTimeout           time.Duration
	MaxSessionAge         time.Duration

	// Batch limits: the most this collector takes per batch; a gateway's
	// Hello may ask for less, never more.
	MaxBatchRecords int
	MaxBatchBytes   int

	// MemoryBudget bounds the bytes held across all sessions for frames
	// being read and payloads being decoded; a session that would pass it
	// waits up to BudgetWait, then is refused as busy.
	MemoryBudget int
	BudgetWait   time.Duration

	// DenyList is the file of revoked gateway ids and certificate serials
	// (pki.DenyList), re-read when it changes: at every handshake and
	// every DenyCheck for the sessions already open. Empty: none.
	DenyList  string
	DenyCheck time.Duration

	// QuarantineDir keeps the frame a session panicked on, at most
	// QuarantineMaxFiles of them (each cut to QuarantineMaxFrame bytes).
	// Empty: frames are not kept.
	QuarantineDir      string
	QuarantineMaxFiles int

	// Refusals are logged at most LogBurst times per kind per LogEvery;
	// the rest are counted (metrics) and summed up in the next line.
	LogEvery time.Duration
	LogBurst int

	// MaxRanges caps each gateway's dedupe ranges (JSONL sink).
	MaxRanges int
}

// QuarantineMaxFrame is the most of one frame kept for analysis.
const QuarantineMaxFrame = 1 << 20

// DefaultConfig suits a head-end serving a few hundred gateways.
func DefaultConfig() Config {
	return Config{
		HandshakeTimeout:      5 * time.Second,
		MaxHandshakes:         64,
		MaxHandshakesPerAddr:  8,
		MaxConns:              1024,
		MaxSessionsPerGateway: 4,
		IdleTimeout:           5 * time.Minute,
		MaxSessionAge:         24 * time.Hour,
		MaxBatchRecords:       10000,
		MaxBatchBytes:         4 << 20,
		MemoryBudget:          256 << 20,
		BudgetWait:            5 * time.Second,
		DenyCheck:             5 * time.Second,
		QuarantineMaxFiles:    64,
		LogEvery:              time.Minute,
		LogBurst:              10,
		MaxRanges:             DefaultMaxRanges,
	}
}

// Validate checks the configuration without I/O; errors name the flag.
func (c Config) Validate() error {
	var errs []error
	add := func(key, format string, a ...any) {
		errs = append(errs, fmt.Errorf("%s: %s", key, fmt.Sprintf(format, a...)))
	}
	for _, d := range []struct {
		key string
		val time.Duration
	}{{"handshake-timeout", c.HandshakeTimeout}, {"idle-timeout", c.IdleTimeout}, {"max-session-age", c.MaxSessionAge},
		{"budget-wait", c.BudgetWait}, {"deny-check", c.DenyCheck}, {"log-every", c.LogEvery}} {
		if d.val <= 0 {
			add(d.key, "%s must be positive", d.val)
		}
	}
	for _, n := range []struct {
		key string
		val int
	}{{"max-handshakes", c.MaxHandshakes}, {"max-handshakes-per-addr", c.MaxHandshakesPerAddr}, {"max-conns", c.MaxConns},
		{"max-sessions-per-gateway", c.MaxSessionsPerGateway}, {"log-burst", c.LogBurst}, {"max-ranges", c.MaxRanges}} {
		if n.val < 1 {
			add(n.key, "%d must be at least 1", n.val)
		}
	}
	if c.MaxHandshakesPerAddr > c.MaxHandshakes {
		add("max-handshakes-per-addr", "%d is above max-handshakes %d", c.MaxHandshakesPerAddr, c.MaxHandshakes)
	}
	if c.MaxBatchRecords < 1 || c.MaxBatchRecords > uplink.MaxBatchRecords {
		add("max-batch-records", "%d is outside 1..%d", c.MaxBatchRecords, uplink.MaxBatchRecords)
	}
	if c.MaxBatchBytes < uplink.MinBatchBytes || c.MaxBatchBytes > uplink.MaxBatchBytes {
		add("max-batch-bytes", "%d is outside %d..%d", c.MaxBatchBytes, uplink.MinBatchBytes, uplink.MaxBatchBytes)
	}
	// One session must be able to read a full frame and decode it.
	if need := uplink.FrameBound(c.MaxBatchRecords, c.MaxBatchBytes) + uplink.PayloadBound(c.MaxBatchRecords, c.MaxBatchBytes); c.MemoryBudget < need {
		add("memory-budget", "%d bytes is below what one session needs for a full batch (%d)", c.MemoryBudget, need)
	}
	if c.QuarantineDir != "" && c.QuarantineMaxFiles < 1 {
		add("quarantine-max-files", "%d must be at least 1", c.QuarantineMaxFiles)
	}
	return errors.Join(errs...)
}
