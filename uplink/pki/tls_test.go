package pki

import (
	"crypto/tls"
	"errors"
	"io"
	"net"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// handshake runs a mutual-TLS handshake over net.Pipe. The server requires
// and verifies client certificates and, once the handshake succeeds, sends
// the gateway id it read from the client's certificate.
func handshake(t *testing.T, server, client *tls.Config) (gotID string, serverErr, clientErr error) {
	t.Helper()
	sc, cc := net.Pipe()
	defer sc.Close()
	defer cc.Close()
	deadline := time.Now().Add(10 * time.Second)
	require.NoError(t, sc.SetDeadline(deadline))
	require.NoError(t, cc.SetDeadline(deadline))

	done := make(chan error, 1)
	go func() {
		srv := tls.Server(sc, server)
		err := srv.Handshake()
		if err == nil {
			var id string
			state := srv.ConnectionState()
			if len(state.VerifiedChains) == 0 {
				done <- errors.New("no verified chain")
				return
			}
			id, err = GatewayID(state.PeerCertificates[0])
			if err == nil {
				_, err = srv.Write([]byte(id))
			}
		}
		srv.Close()
		done <- err
	}()

	cli := tls.Client(cc, client)
	clientErr = cli.Handshake()
	if clientErr == nil {
		// Under TLS 1.3 the server judges the client's certificate after the
		// client's handshake returns; the verdict arrives with the first read.
		var got []byte
		got, clientErr = io.ReadAll(cli)
		gotID = string(got)
	}
	cli.Close()
	return gotID, <-done, clientErr
}

func TestMutualTLS(t *testing.T) {
	dir := newPKI(t)
	other := newPKI(t) // a second, unrelated CA

	_, _, err := IssueGateway(dir, "gw-17", testOpts())
	require.NoError(t, err)
	_, _, err = IssueCollector(dir, "collector.example.net", []string{"127.0.0.1"}, testOpts())
	require.NoError(t, err)
	_, _, err = IssueGateway(other, "gw-17", testOpts())
	require.NoError(t, err)
	_, _, err = IssueCollector(other, "collector.example.net", nil, testOpts())
	require.NoError(t, err)

	load := func(cert, key string) tls.Certificate {
		pair, err := tls.LoadX509KeyPair(cert, key)
		require.NoError(t, err)
		return pair
	}
	gateway := load(GatewayFiles(dir, "gw-17"))
	collector := load(CollectorFiles(dir, "collector.example.net"))
	foreignGateway := load(GatewayFiles(other, "gw-17"))
	foreignCollector := load(CollectorFiles(other, "collector.example.net"))
	pool := caPool(t, dir)
	clock := func() time.Time { return testNow.Add(time.Hour) }

	tests := []struct {
		name       string
		serverCert tls.Certificate
		clientCert tls.Certificate
		serverName string
		maxVersion uint16
		wantServer string // error substring on the server side; "" = success
		wantClient string // error substring on the client side
	}{
		{name: "TLS 1.3", serverCert: collector, clientCert: gateway, serverName: "collector.example.net"},
		{name: "TLS 1.2", serverCert: collector, clientCert: gateway, serverName: "collector.example.net", maxVersion: tls.VersionTLS12},
		{name: "by IP SAN", serverCert: collector, clientCert: gateway, serverName: "127.0.0.1"},
		{
			name: "client from another CA", serverCert: collector, clientCert: foreignGateway, serverName: "collector.example.net",
			wantServer: "certificate signed by unknown authority", wantClient: "unknown certificate authority",
		},
		{
			name: "client from another CA, TLS 1.2", serverCert: collector, clientCert: foreignGateway, serverName: "collector.example.net", maxVersion: tls.VersionTLS12,
			wantServer: "certificate signed by unknown authority", wantClient: "unknown certificate authority",
		},
		{
			name: "server from another CA", serverCert: foreignCollector, clientCert: gateway, serverName: "collector.example.net",
			wantServer: "bad certificate", wantClient: "certificate signed by unknown authority",
		},
		{
			name: "server certificate as client certificate", serverCert: collector, clientCert: collector, serverName: "collector.example.net",
			wantServer: "incompatible key usage", wantClient: "certificate",
		},
		{
			name: "client certificate as server certificate", serverCert: gateway, clientCert: gateway, serverName: "gw-17",
			wantServer: "bad certificate", wantClient: "failed to verify certificate",
		},
		{
			name: "wrong server name", serverCert: collector, clientCert: gateway, serverName: "elsewhere.example.net",
			wantServer: "bad certificate", wantClient: "not elsewhere.example.net",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			server := &tls.Config{
				MinVersion:   tls.VersionTLS12,
				MaxVersion:   tt.maxVersion,
				Certificates: []tls.Certificate{tt.serverCert},
				ClientCAs:    pool,
				ClientAuth:   tls.RequireAndVerifyClientCert,
				Time:         clock,
			}
			client := &tls.Config{
				MinVersion:   tls.VersionTLS12,
				Certificates: []tls.Certificate{tt.clientCert},
				RootCAs:      pool,
				ServerName:   tt.serverName,
				Time:         clock,
			}
			id, serverErr, clientErr := handshake(t, server, client)
			if tt.wantServer == "" {
				require.NoError(t, serverErr)
				require.NoError(t, clientErr)
				require.Equal(t, "gw-17", id)
				return
			}
			require.ErrorContains(t, serverErr, tt.wantServer)
			require.ErrorContains(t, clientErr, tt.wantClient)
			require.Empty(t, id)
		})
	}
}

func TestMutualTLSExpired(t *testing.T) {
	dir := newPKI(t)
	opts := testOpts()
	opts.Validity = time.Hour
	_, _, err := IssueGateway(dir, "gw1", opts)
	require.NoError(t, err)
	_, _, err = IssueCollector(dir, "collector", nil, testOpts())
	require.NoError(t, err)

	gw, err := tls.LoadX509KeyPair(filepath.Join(dir, "gateway-gw1.pem"), filepath.Join(dir, "gateway-gw1-key.pem"))
	require.NoError(t, err)
	col, err := tls.LoadX509KeyPair(CollectorFiles(dir, "collector"))
	require.NoError(t, err)
	pool := caPool(t, dir)
	clock := func() time.Time { return testNow.Add(2 * time.Hour) }
	_, serverErr, clientErr := handshake(t,
		&tls.Config{Certificates: []tls.Certificate{col}, ClientCAs: pool, ClientAuth: tls.RequireAndVerifyClientCert, Time: clock},
		&tls.Config{Certificates: []tls.Certificate{gw}, RootCAs: pool, ServerName: "collector", Time: clock},
	)
	require.ErrorContains(t, serverErr, "expired")
	require.Error(t, clientErr)
}
