package sender

import (
	"context"
	"errors"

	"github.com/weirgw/weir/uplink"
)

// dtlsTransport dials endpoints with transport: dtls through uplink/rudp
// (a reliable ordered stream over pion/dtls/v3 with Connection IDs).
//
// Until uplink/rudp is in the tree this is the seam: Dial fails with a
// reason `weir link` shows. Wiring it is: ClientConfig from rudp, rudp.Dial,
// and a Link whose Segments reads (*rudp.Conn).Stats().
type dtlsTransport struct{}

var errNoDTLS = errors.New("dtls transport: uplink/rudp is not in this build yet")

func (dtlsTransport) Dial(context.Context, uplink.Endpoint, *uplink.Identity) (Link, error) {
	return nil, errNoDTLS
}
