package seal

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io/fs"
	"os"
	"path/filepath"
)

// Key files: the current epoch's key, and the next one's while a seal is
// being made. Each is magic, epoch (8 bytes BE), Ed25519 seed (32 bytes),
// CRC-32C of those.
const (
	keyFile     = "key"
	nextFile    = "key.next"
	keyMagic    = "WEIRSK1\n"
	keyFileSize = len(keyMagic) + 8 + ed25519.SeedSize + 4
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// Keys is a gateway's forward-secure seal key: one Ed25519 key per epoch,
// each public key signed by the previous one (in the seal that closes the
// previous epoch). Not safe for concurrent use.
type Keys struct {
	dir   string
	epoch uint64
	priv  ed25519.PrivateKey
	next  ed25519.PrivateKey // prepared for the next epoch, nil until Prepare
}

// Provision writes epoch 0's key into dir (created 0700) and returns its
// public key, the one to register at the collector. It refuses to replace
// a key: a gateway provisioned again starts a new log with a new key in a
// fresh directory.
func Provision(dir string) (ed25519.PublicKey, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("seal: create key directory %s: %w", dir, err)
	}
	for _, name := range []string{keyFile, nextFile} {
		if _, err := os.Stat(filepath.Join(dir, name)); err == nil {
			return nil, fmt.Errorf("seal: %s already holds a seal key; a new log needs a new key directory", dir)
		}
	}
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("seal: generate key: %w", err)
	}
	if err := writeKey(dir, keyFile, 0, priv); err != nil {
		return nil, err
	}
	return pub, nil
}

// PublicKeyOf reads the public key of the current epoch's key in dir, for
// printing at provisioning.
func PublicKeyOf(dir string) (uint64, ed25519.PublicKey, error) {
	epoch, priv, err := readKey(filepath.Join(dir, keyFile))
	if err != nil {
		return 0, nil, err
	}
	return epoch, priv.Public().(ed25519.PublicKey), nil
}

// OpenKeys opens the key in dir. sealed is the last epoch a spooled seal
// closed and the next public key it named (from the checkpoint committed
// with the seal), ok false if no seal was ever spooled with these keys.
// OpenKeys finishes what a crash interrupted: if the seal of the current
// epoch was spooled, the epoch's key is erased and the next one taken; if
// it was not, a prepared next key is discarded and the epoch seals again.
func OpenKeys(dir string, sealedEpoch uint64, sealedNext ed25519.PublicKey, ok bool) (*Keys, error) {
	path := filepath.Join(dir, keyFile)
	epoch, priv, err := readKey(path)
	erased := errors.Is(err, errErased)
	if err != nil && !erased {
		return nil, err
	}
	nepoch, npriv, nerr := readKey(filepath.Join(dir, nextFile))
	if nerr != nil && !errors.Is(nerr, fs.ErrNotExist) {
		return nil, nerr
	}
	haveNext := nerr == nil
	k := &Keys{dir: dir}
	switch {
	case erased && haveNext && ok && sealedEpoch+1 == nepoch && bytes.Equal(npriv.Public().(ed25519.PublicKey), sealedNext):
		// Killed between erasing the sealed epoch's key and the rename.
		k.epoch, k.next = sealedEpoch, npriv
		return k, k.Advance()
	case erased:
		return nil, fmt.Errorf("seal: the key in %s was erased and no spooled seal names its successor: the chain cannot go on; provision a new key (a new log)", dir)
	case ok && sealedEpoch == epoch:
		// The seal of this epoch is spooled: its key must go.
		if !haveNext || nepoch != epoch+1 || !bytes.Equal(npriv.Public().(ed25519.PublicKey), sealedNext) {
			// Provisioned again (a fresh key of the same epoch), or the
			// next key lost: either way the chain cannot go on from here.
			return nil, fmt.Errorf("%w: epoch %d is sealed but the next epoch's key in %s is missing or not the one the seal named", ErrNewChain, epoch, dir)
		}
		k.epoch, k.priv, k.next = epoch, priv, npriv
		return k, k.Advance()
	case ok && sealedEpoch > epoch:
		return nil, fmt.Errorf("%w: the spool says epoch %d was sealed but the key in %s is of epoch %d (provisioned again, or restored from a copy)", ErrNewChain, sealedEpoch, dir, epoch)
	}
	if haveNext {
		// Prepared for a seal that was never spooled: never used.
		if err := removeSynced(dir, nextFile); err != nil {
			return nil, err
		}
	}
	k.epoch, k.priv = epoch, priv
	return k, nil
}

// Epoch is the epoch the next seal closes.
func (k *Keys) Epoch() uint64 { return k.epoch }

// Public is the current epoch's public key.
func (k *Keys) Public() ed25519.PublicKey { return k.priv.Public().(ed25519.PublicKey) }

// Prepare makes the next epoch's key and writes it durably beside the
// current one, before the seal that names it is spooled.
func (k *Keys) Prepare() (ed25519.PublicKey, error) {
	if k.next == nil {
		_, priv, err := ed25519.GenerateKey(rand.Reader)
		if err != nil {
			return nil, fmt.Errorf("seal: generate the key of epoch %d: %w", k.epoch+1, err)
		}
		if err := writeKey(k.dir, nextFile, k.epoch+1, priv); err != nil {
			return nil, err
		}
		k.next = priv
	}
	return k.next.Public().(ed25519.PublicKey), nil
}

// Sign signs msg with the current epoch's key.
func (k *Keys) Sign(msg []byte) []byte { return ed25519.Sign(k.priv, msg) }

// Advance ends the epoch once its seal is spooled: the key file is
// overwritten with zeros and fsynced, then the next key renamed over it
// and the directory fsynced; the old key is wiped from memory too.
func (k *Keys) Advance() error {
	if k.next == nil {
		return fmt.Errorf("seal: advance from epoch %d with no next key prepared", k.epoch)
	}
	path := filepath.Join(k.dir, keyFile)
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		return fmt.Errorf("seal: erase the key of epoch %d: %w", k.epoch, err)
	}
	_, err = f.WriteAt(make([]byte, keyFileSize), 0)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("seal: erase the key of epoch %d in %s: %w", k.epoch, path, err)
	}
	if err := os.Rename(filepath.Join(k.dir, nextFile), path); err != nil {
		return fmt.Errorf("seal: take the key of epoch %d: %w", k.epoch+1, err)
	}
	if err := syncDir(k.dir); err != nil {
		return err
	}
	clear(k.priv)
	k.priv, k.next = k.next, nil
	k.epoch++
	return nil
}

var errErased = errors.New("seal: key erased")

// ErrNewChain is a key that does not continue the chain the spool's seals
// made: a gateway provisioned again, or a key put back. Opening it with
// no seal (OpenKeys with ok false) begins a new chain, which the
// collector sees as such.
var ErrNewChain = errors.New("seal: a new key chain")

func writeKey(dir, name string, epoch uint64, priv ed25519.PrivateKey) error {
	b := append([]byte(keyMagic), make([]byte, 8)...)
	binary.BigEndian.PutUint64(b[len(keyMagic):], epoch)
	b = append(b, priv.Seed()...)
	b = binary.BigEndian.AppendUint32(b, crc32.Checksum(b, castagnoli))
	tmp := filepath.Join(dir, name+".tmp")
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return fmt.Errorf("seal: write key %s: %w", tmp, err)
	}
	_, err = f.Write(b)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, filepath.Join(dir, name))
	}
	if err == nil {
		err = syncDir(dir)
	}
	if err != nil {
		return fmt.Errorf("seal: write key %s in %s: %w", name, dir, err)
	}
	return nil
}

func readKey(path string) (uint64, ed25519.PrivateKey, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, nil, fmt.Errorf("seal: read key: %w", err)
	}
	if len(b) == keyFileSize && bytes.Equal(b, make([]byte, keyFileSize)) {
		return 0, nil, fmt.Errorf("%w: %s", errErased, path)
	}
	if len(b) != keyFileSize || string(b[:len(keyMagic)]) != keyMagic {
		return 0, nil, fmt.Errorf("seal: key %s: not a seal key (%d bytes)", path, len(b))
	}
	body := b[:keyFileSize-4]
	if crc32.Checksum(body, castagnoli) != binary.BigEndian.Uint32(b[keyFileSize-4:]) {
		return 0, nil, fmt.Errorf("seal: key %s: checksum mismatch", path)
	}
	epoch := binary.BigEndian.Uint64(b[len(keyMagic):])
	return epoch, ed25519.NewKeyFromSeed(b[len(keyMagic)+8 : keyFileSize-4]), nil
}

func removeSynced(dir, name string) error {
	if err := os.Remove(filepath.Join(dir, name)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("seal: remove %s in %s: %w", name, dir, err)
	}
	return syncDir(dir)
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("seal: sync %s: %w", dir, err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("seal: sync %s: %w", dir, err)
	}
	return nil
}
