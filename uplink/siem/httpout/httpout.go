package httpout

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/weirgw/weir/uplink"
)

// TLSConfig names the files of an HTTP output's TLS: the CA that signed
// the server (empty: the system's roots) and, optionally, a client
// certificate and key.
type TLSConfig struct {
	CA         string `mapstructure:"ca" yaml:"ca"`
	Cert       string `mapstructure:"cert" yaml:"cert"`
	Key        string `mapstructure:"key" yaml:"key"`
	ServerName string `mapstructure:"server_name" yaml:"server_name"`
}

// Client builds an HTTP client for one output: TLS 1.2+ with AEAD
// suites, the CA file's roots, timeout per request.
func Client(c TLSConfig, timeout time.Duration) (*http.Client, error) {
	tc := &tls.Config{MinVersion: tls.VersionTLS12, CipherSuites: uplink.AEADSuites(), ServerName: c.ServerName}
	if c.CA != "" {
		pem, err := os.ReadFile(c.CA)
		if err != nil {
			return nil, fmt.Errorf("tls.ca: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("tls.ca: %s holds no PEM certificate", c.CA)
		}
		tc.RootCAs = pool
	}
	if c.Cert != "" || c.Key != "" {
		pair, err := tls.LoadX509KeyPair(c.Cert, c.Key)
		if err != nil {
			return nil, fmt.Errorf("tls.cert, tls.key: %w", err)
		}
		tc.Certificates = []tls.Certificate{pair}
	}
	tr := &http.Transport{TLSClientConfig: tc, Proxy: http.ProxyFromEnvironment, MaxIdleConnsPerHost: 2,
		IdleConnTimeout: 90 * time.Second, TLSHandshakeTimeout: timeout, ResponseHeaderTimeout: timeout, ForceAttemptHTTP2: true}
	return &http.Client{Transport: tr, Timeout: timeout}, nil
}

// Secret is value, or the first line of file when value is empty.
func Secret(value, file string) (string, error) {
	if value != "" || file == "" {
		return value, nil
	}
	b, err := os.ReadFile(file)
	if err != nil {
		return "", err
	}
	s, _, _ := strings.Cut(string(b), "\n")
	return strings.TrimSpace(s), nil
}

// Post sends body (gzipped when zip) and returns the status and at most
// maxResp bytes of the response.
func Post(ctx context.Context, c *http.Client, url string, hdr http.Header, body []byte, zip bool, maxResp int64) (int, []byte, error) {
	var r io.Reader = bytes.NewReader(body)
	if zip {
		var buf bytes.Buffer
		zw, _ := gzip.NewWriterLevel(&buf, gzip.BestSpeed)
		_, _ = zw.Write(body)
		_ = zw.Close()
		r = &buf
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, r)
	if err != nil {
		return 0, nil, err
	}
	req.Header = hdr.Clone()
	if zip {
		req.Header.Set("Content-Encoding", "gzip")
	}
	resp, err := c.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxResp))
	if err != nil {
		return resp.StatusCode, nil, fmt.Errorf("read response: %w", err)
	}
	return resp.StatusCode, b, nil
}
