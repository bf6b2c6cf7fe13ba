package pki

import (
	"fmt"
	"path/filepath"
	"time"
)

// Files in a PKI directory.
const (
	CACertFile = "ca.pem"
	CAKeyFile  = "ca-key.pem"
)

const (
	caYears   = 10              // default CA validity
	leafYears = 2               // default gateway and collector validity
	clockSkew = 5 * time.Minute // NotBefore backdating, for boards whose clock lags
)

// GatewayFiles returns the certificate and key paths of gateway id in dir.
func GatewayFiles(dir, id string) (cert, key string) {
	return filepath.Join(dir, "gateway-"+id+".pem"), filepath.Join(dir, "gateway-"+id+"-key.pem")
}

// CollectorFiles returns the certificate and key paths of collector host in
// dir.
func CollectorFiles(dir, host string) (cert, key string) {
	return filepath.Join(dir, "collector-"+host+".pem"), filepath.Join(dir, "collector-"+host+"-key.pem")
}

// Options tunes issuing.
type Options struct {
	Validity time.Duration    // 0 = default: CA 10 years, leaf certificates 2 years
	Force    bool             // overwrite existing files; otherwise refuse with an error naming the file
	Now      func() time.Time // nil = time.Now (tests)
}

func (o Options) validate() error {
	if o.Validity < 0 {
		return fmt.Errorf("pki: validity %s: must not be negative", o.Validity)
	}
	return nil
}

func (o Options) now() time.Time {
	if o.Now != nil {
		return o.Now()
	}
	return time.Now()
}

// notAfter is the end of validity of a certificate issued at now.
func (o Options) notAfter(now time.Time, defaultYears int) time.Time {
	if o.Validity == 0 {
		return now.AddDate(defaultYears, 0, 0)
	}
	return now.Add(o.Validity)
}
