package spool

import (
	"fmt"
	"math/bits"
)

// checkAddressSpace refuses profiles that cannot fit a 32-bit address
// space: Badger maps memtables and value-log files at twice their size.
func checkAddressSpace(p Profile) error {
	if bits.UintSize == 32 && p != ProfileSmall {
		return fmt.Errorf("spool: profile %q maps more than a 32-bit address space can hold; use profile small on this board", p)
	}
	return nil
}
