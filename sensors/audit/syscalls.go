package audit

import "strconv"

// Audit architecture tokens (linux/audit.h AUDIT_ARCH_*), as the SYSCALL
// record's arch= gives them in hex.
const (
	archX8664   = 0xc000003e
	archAarch64 = 0xc00000b7
	archARM     = 0x40000028 // EABI, little endian
	archI386    = 0x40000003
)

// archName names an arch= value; ok is false for one not known here.
func archName(hexArch string) (name string, table map[uint32]string, ok bool) {
	a, err := strconv.ParseUint(hexArch, 16, 32)
	if err != nil {
		return "", nil, false
	}
	switch a {
	case archX8664:
		return "x86_64", syscallsX8664, true
	case archAarch64:
		return "aarch64", syscallsAarch64, true
	case archARM:
		return "arm", syscallsARM, true
	case archI386:
		return "i386", syscallsI386, true
	}
	return "", nil, false
}
