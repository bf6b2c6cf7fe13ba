package uplink

import (
	"context"
	"crypto/x509"
	"errors"
	"net"
	"strings"
	"syscall"
)

// Reason classifies why a session could not be set up, for telemetry and
// `weir link`.
type Reason string

const (
	ReasonNone           Reason = ""
	ReasonBadCertificate Reason = "bad_certificate" // a certificate was refused (name, usage, signature)
	ReasonUnknownCA      Reason = "unknown_ca"      // a side's certificate is not signed by the CA the other trusts
	ReasonExpired        Reason = "expired"         // a certificate is expired or not yet valid
	ReasonTimeout        Reason = "timeout"         // no answer in time
	ReasonVersion        Reason = "version"         // no common TLS or protocol version
	ReasonRefusedID      Reason = "refused_id"      // the collector refused the gateway id
	ReasonRefused        Reason = "refused"         // connection refused or unreachable
	ReasonPeer           Reason = "peer_error"      // the collector closed the session with another error
	ReasonBusy           Reason = "busy"            // the collector's budget (handshakes, sessions, memory) is spent: retry later
	ReasonOther          Reason = "other"
)

// Reasons lists every failure reason, for metrics that want each label
// present from the start.
func Reasons() []Reason {
	return []Reason{ReasonBadCertificate, ReasonUnknownCA, ReasonExpired, ReasonTimeout, ReasonVersion,
		ReasonRefusedID, ReasonRefused, ReasonPeer, ReasonBusy, ReasonOther}
}

// Classify names the reason of a failed connect, handshake or Hello.
func Classify(err error) Reason {
	if err == nil {
		return ReasonNone
	}
	if re, ok := errors.AsType[*ReasonError](err); ok {
		return re.Reason
	}
	if pe, ok := errors.AsType[*Error](err); ok {
		switch pe.Code {
		case ErrIdentity:
			return ReasonRefusedID
		case ErrVersion:
			return ReasonVersion
		case ErrBusy:
			return ReasonBusy
		}
		return ReasonPeer
	}
	if _, ok := errors.AsType[x509.UnknownAuthorityError](err); ok {
		return ReasonUnknownCA
	}
	if ce, ok := errors.AsType[x509.CertificateInvalidError](err); ok {
		if ce.Reason == x509.Expired {
			return ReasonExpired
		}
		return ReasonBadCertificate
	}
	if _, ok := errors.AsType[x509.HostnameError](err); ok {
		return ReasonBadCertificate
	}
	// Alerts from the peer arrive as text (crypto/tls's alert type is not
	// exported, pion/dtls words them its own way).
	msg := strings.ToLower(err.Error())
	switch {
	case strings.Contains(msg, "unknown certificate authority"), strings.Contains(msg, "unknownca"),
		strings.Contains(msg, "unknown authority"):
		return ReasonUnknownCA
	case strings.Contains(msg, "expired"), strings.Contains(msg, "not yet valid"):
		return ReasonExpired
	case strings.Contains(msg, "protocol version"), strings.Contains(msg, "no supported versions"),
		strings.Contains(msg, "protocolversion"):
		return ReasonVersion
	case strings.Contains(msg, "certificate"):
		return ReasonBadCertificate
	}
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, syscall.ETIMEDOUT) {
		return ReasonTimeout
	}
	if ne, ok := errors.AsType[net.Error](err); ok && ne.Timeout() {
		return ReasonTimeout
	}
	if errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.EHOSTUNREACH) || errors.Is(err, syscall.ENETUNREACH) {
		return ReasonRefused
	}
	return ReasonOther
}

// ReasonError is an error whose reason was established by other means
// than its text (e.g. the gateway found its own certificate expired after
// the peer answered only "bad certificate").
type ReasonError struct {
	Reason Reason
	Err    error
}

func (e *ReasonError) Error() string { return e.Err.Error() }
func (e *ReasonError) Unwrap() error { return e.Err }
