package main

import (
	"bytes"
	"compress/gzip"
	"fmt"
	"io"
	"os"
	"path"
	"strings"
)

// weirGID is the weir group's id in the board's root (initramfs.sh gives
// the -1 of WEIR_USERS the system id 999).
const weirGID = 999

const (
	gatewayID = "smoke-gw"
	user      = "technician"
	// The password is the test's own; the board holds only its hash.
	password = "smoke test: not a real password"
)

// siteConfig is the site's /etc/weir/weir.yaml on the board, as a site
// overlay would give a real one: the gateway's identity, its collector on
// the host, a Modbus flow meter on the second serial port polled four
// times a second, the clock from ptp4l (absent on the emulated board: the
// state shown is what the gateway says of a clock it cannot ask), the
// technician's password hash.
func siteConfig(collectorPort int, hash string) string {
	return fmt.Sprintf(`# The emulated board's site configuration (buildroot/smoke).
gateway:
  id: %[1]s
data_dir: /var/lib/weir
spool:
  max_bytes: 96MiB
  profile: small
clock:
  mode: linuxptp
  linuxptp:
    socket: /var/run/ptp4lro
inputs:
  files: []
  modbus:
    buses:
      - name: rs485-1
        serial: {device: /dev/ttyS0, baud: 19200}
        timeout: 500ms
    devices:
      - name: flow-1
        bus: rs485-1
        unit: 7
        interval: 250ms
        registers:
          - {name: flow, register: holding, address: 0, type: float32, unit: m3/h}
          - {name: level, register: holding, address: 2, type: uint16, unit: mm}
          - {name: total, register: holding, address: 3, type: uint32, order: CDAB, unit: m3}
uplink:
  endpoints:
    - address: 10.0.2.2:%[2]d
      server_name: localhost
  tls:
    ca: /etc/weir/pki/ca.pem
    cert: /etc/weir/pki/gateway-%[1]s.pem
    key: /etc/weir/pki/gateway-%[1]s-key.pem
  reconnect_min: 200ms
  reconnect_max: 2s
console:
  user: %[3]s
  password_hash: "%[4]s"
  idle_timeout: 5m
`, gatewayID, collectorPort, user, hash)
}

// cpioEntry is one file or directory of the site's archive.
type cpioEntry struct {
	name string // without a leading /
	mode uint32 // with the type bits
	uid  int
	gid  int
	data []byte
}

const (
	cpioDir  = 0o040000
	cpioFile = 0o100000
)

// siteArchive is the site's files as a gzipped newc cpio archive, which
// the kernel unpacks over the base initramfs (it takes archives one after
// another): /etc/weir root's and readable by weir's group only, as
// post-fakeroot.sh leaves it on an image.
func siteArchive(config string, pki map[string][]byte) ([]byte, error) {
	entries := []cpioEntry{
		{name: "etc", mode: cpioDir | 0o755},
		{name: "etc/weir", mode: cpioDir | 0o750, gid: weirGID},
		{name: "etc/weir/weir.yaml", mode: cpioFile | 0o640, gid: weirGID, data: []byte(config)},
		{name: "etc/weir/pki", mode: cpioDir | 0o750, gid: weirGID},
	}
	for _, name := range sortedKeys(pki) {
		entries = append(entries, cpioEntry{name: path.Join("etc/weir/pki", name), mode: cpioFile | 0o640, gid: weirGID, data: pki[name]})
	}
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	if err := writeCpio(zw, entries); err != nil {
		return nil, err
	}
	if err := zw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// writeCpio writes entries in the "newc" format the kernel's initramfs
// unpacker reads, then the trailer.
func writeCpio(w io.Writer, entries []cpioEntry) error {
	ino := 1
	write := func(e cpioEntry, nlink int) error {
		name := e.name + "\x00"
		hdr := fmt.Sprintf("070701%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X",
			ino, e.mode, e.uid, e.gid, nlink, 0, len(e.data), 0, 0, 0, 0, len(name), 0)
		ino++
		rec := hdr + name + strings.Repeat("\x00", pad4(len(hdr)+len(name)))
		if _, err := io.WriteString(w, rec); err != nil {
			return err
		}
		if _, err := w.Write(e.data); err != nil {
			return err
		}
		_, err := io.WriteString(w, strings.Repeat("\x00", pad4(len(e.data))))
		return err
	}
	for _, e := range entries {
		nlink := 1
		if e.mode&cpioDir != 0 {
			nlink = 2
		}
		if err := write(e, nlink); err != nil {
			return err
		}
	}
	return write(cpioEntry{name: "TRAILER!!!"}, 1)
}

func pad4(n int) int { return (4 - n%4) % 4 }

// readPKI reads the files the board needs from the PKI directory.
func readPKI(dir string) (map[string][]byte, error) {
	out := map[string][]byte{}
	for _, name := range []string{"ca.pem", "gateway-" + gatewayID + ".pem", "gateway-" + gatewayID + "-key.pem"} {
		b, err := os.ReadFile(path.Join(dir, name))
		if err != nil {
			return nil, err
		}
		out[name] = b
	}
	return out, nil
}
