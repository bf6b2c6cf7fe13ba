package line

// crc16Table is the byte-wise table for the polynomial 0x1021, MSB first,
// shared by CRC-16/CCITT-FALSE and CRC-16/XMODEM (they differ only in the
// initial value). Built once by a function and never written after.
var crc16Table = makeCRC16Table(0x1021)

func makeCRC16Table(poly uint16) *[256]uint16 {
	var t [256]uint16
	for i := range t {
		c := uint16(i) << 8
		for range 8 {
			if c&0x8000 != 0 {
				c = c<<1 ^ poly
			} else {
				c <<= 1
			}
		}
		t[i] = c
	}
	return &t
}

// crc16 continues a non-reflected CRC-16 with polynomial 0x1021 from crc.
func crc16(crc uint16, b []byte) uint16 {
	for _, x := range b {
		crc = crc<<8 ^ crc16Table[byte(crc>>8)^x]
	}
	return crc
}

// nmeaXOR is the NMEA 0183 checksum: the XOR of the bytes.
func nmeaXOR(b []byte) byte {
	var x byte
	for _, c := range b {
		x ^= c
	}
	return x
}
