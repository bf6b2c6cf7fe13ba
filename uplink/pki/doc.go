// Package pki owns the small certificate authority an operator runs to
// provision a Weir deployment without openssl: it creates the CA, issues
// gateway client certificates and collector server certificates into one
// directory, and tells which gateway a verified client certificate names.
//
// A PKI directory holds the CA (ca.pem, ca-key.pem) and one certificate and
// key per identity (gateway-<id>.pem, gateway-<id>-key.pem,
// collector-<host>.pem, collector-<host>-key.pem). Keys are ECDSA P-256 in
// PKCS#8 PEM, created with mode 0600; certificates are mode 0644. Every file
// is written atomically (temporary file, fsync, rename), and existing files
// are kept unless Options.Force is set.
//
// A gateway's identity is its id, carried as the URI SAN
// urn:weir:gateway:<id> and, for people reading the certificate, as the
// CommonName; GatewayID reads only the URI SAN. The mutual-TLS settings
// that use these files belong to package uplink.
//
// docs/ARCHITECTURE.md places provisioning among the uplink's parts;
// docs/SECURITY.md tells how to revoke a gateway.
package pki
