/*
 * A libmodbus server holding a value of every data type in every byte and
 * word order, the independent peer of sensors/modbus/poll's interop test.
 *   cc -o typed_server typed_server.c $(pkg-config --cflags --libs libmodbus)
 *
 *   typed_server rtu DEVICE BAUD UNIT   RTU, 8E1, on a tty
 *   typed_server tcp PORT               Modbus TCP on 127.0.0.1:PORT
 *
 * Bit patterns come from the C compiler's own float and integer
 * representations, laid out by put() below.
 *
 * Before "ready" it prints its register map, one entry a line:
 *   map NAME REGISTER ADDRESS TYPE ORDER LENGTH
 * The values (the Go test knows them by type):
 *   int16 -1234, uint16 0xBEEF, int32 -123456789, uint32 0xDEADBEEF,
 *   int64 -1234567890123456789, uint64 0xFEDCBA9876543210,
 *   float32 -273.15f,
 *   float64 6.02214076e23, string "PUMP-3" in 4 registers,
 *   coil 3 on, discrete 5 on, bitfield 0x8009.
 * Orders: ABCD big-endian, DCBA little-endian, BADC bytes swapped in each
 * word, CDAB words swapped.
 */
#include <errno.h>
#include <modbus.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define N 500
static const char *orders[] = {"ABCD", "CDAB", "BADC", "DCBA"};

/* put lays out n big-endian bytes (n even) as registers in order o. */
static void put(uint16_t *dst, const uint8_t *be, int n, const char *o) {
	uint8_t b[8];
	int i;
	if (strcmp(o, "DCBA") == 0) {
		for (i = 0; i < n; i++) b[i] = be[n - 1 - i];
	} else if (strcmp(o, "BADC") == 0) {
		for (i = 0; i < n; i += 2) { b[i] = be[i + 1]; b[i + 1] = be[i]; }
	} else if (strcmp(o, "CDAB") == 0) {
		for (i = 0; i < n; i += 2) { b[i] = be[n - 2 - i]; b[i + 1] = be[n - 1 - i]; }
	} else {
		memcpy(b, be, n);
	}
	for (i = 0; i < n / 2; i++) dst[i] = (uint16_t)(b[2 * i] << 8 | b[2 * i + 1]);
}

static void be64(uint8_t *b, uint64_t v, int n) {
	for (int i = 0; i < n; i++) b[i] = (uint8_t)(v >> (8 * (n - 1 - i)));
}

static int addr = 0;
static void entry(modbus_mapping_t *m, const char *name, const char *type, const char *o, uint64_t bits, int n) {
	uint8_t b[8];
	be64(b, bits, n);
	put(&m->tab_registers[addr], b, n, o);
	printf("map %s_%s holding %d %s %s 0\n", name, o, addr, type, o);
	addr += n / 2;
}

int main(int argc, char **argv) {
	if (argc < 3) {
		fprintf(stderr, "usage: %s rtu DEVICE BAUD UNIT | tcp PORT\n", argv[0]);
		return 2;
	}
	modbus_mapping_t *m = modbus_mapping_new(N, N, N, N);
	if (m == NULL) return 1;
	for (int k = 0; k < 4; k++) {
		const char *o = orders[k];
		int16_t i16 = -1234;
		int32_t i32 = -123456789;
		int64_t i64 = -1234567890123456789LL;
		double f64 = 6.02214076e23;
		uint64_t f64bits;
		memcpy(&f64bits, &f64, 8);
		entry(m, "i16", "int16", o, (uint16_t)i16, 2);
		entry(m, "u16", "uint16", o, 0xBEEF, 2);
		entry(m, "i32", "int32", o, (uint32_t)i32, 4);
		entry(m, "u32", "uint32", o, 0xDEADBEEFu, 4);
		entry(m, "i64", "int64", o, (uint64_t)i64, 8);
		entry(m, "u64", "uint64", o, 0xFEDCBA9876543210ull, 8);
		entry(m, "f64", "float64", o, f64bits, 8);
		float f32 = -273.15f;
		uint32_t f32bits;
		memcpy(&f32bits, &f32, 4);
		entry(m, "f32", "float32", o, f32bits, 4);
	}
	/* strings: ABCD high byte first, BADC low byte first */
	const char *s = "PUMP-3\0\0";
	for (int k = 0; k < 2; k++) {
		for (int i = 0; i < 4; i++) {
			uint8_t hi = (uint8_t)s[2 * i], lo = (uint8_t)s[2 * i + 1];
			m->tab_registers[addr + i] = k == 0 ? (uint16_t)(hi << 8 | lo) : (uint16_t)(lo << 8 | hi);
		}
		printf("map str_%s holding %d string %s 4\n", k == 0 ? "ABCD" : "BADC", addr, k == 0 ? "ABCD" : "BADC");
		addr += 4;
	}
	m->tab_registers[addr] = 0x8009;
	printf("map status holding %d bitfield ABCD 0\n", addr);
	addr++;
	/* input registers too: a float in ABCD. Not with libmodbus's
	 * modbus_set_float_abcd: in 3.1.6 its names describe the bytes of the
	 * uint16 array in host memory, so on a little-endian host "abcd" puts
	 * BADC on the wire (this test found it). */
	{
		float f = -273.15f;
		uint32_t bits;
		uint8_t b[4];
		memcpy(&bits, &f, 4);
		be64(b, bits, 4);
		put(&m->tab_input_registers[10], b, 4, "ABCD");
	}
	printf("map f32_input input 10 float32 ABCD 0\n");
	m->tab_bits[3] = 1;
	printf("map coil3 coil 3 bool ABCD 0\n");
	m->tab_input_bits[5] = 1;
	printf("map discrete5 discrete 5 bool ABCD 0\n");
	printf("map discrete6 discrete 6 bool ABCD 0\n");

	uint8_t query[MODBUS_TCP_MAX_ADU_LENGTH];
	modbus_t *ctx;
	if (strcmp(argv[1], "rtu") == 0) {
		if (argc < 5) return 2;
		ctx = modbus_new_rtu(argv[2], atoi(argv[3]), 'E', 8, 1);
		if (ctx == NULL || modbus_set_slave(ctx, atoi(argv[4])) == -1 || modbus_connect(ctx) == -1) {
			fprintf(stderr, "rtu %s: %s\n", argv[2], modbus_strerror(errno));
			return 1;
		}
		printf("ready\n");
		fflush(stdout);
		for (;;) {
			int rc = modbus_receive(ctx, query);
			if (rc > 0) {
				modbus_reply(ctx, query, rc, m);
			} else if (rc == -1 && (errno == EBADF || errno == EIO)) {
				break;
			}
		}
	} else {
		ctx = modbus_new_tcp("127.0.0.1", atoi(argv[2]));
		int sock = ctx == NULL ? -1 : modbus_tcp_listen(ctx, 4);
		if (sock == -1) {
			fprintf(stderr, "tcp %s: %s\n", argv[2], modbus_strerror(errno));
			return 1;
		}
		printf("ready\n");
		fflush(stdout);
		for (;;) {
			if (modbus_tcp_accept(ctx, &sock) == -1) break;
			for (;;) {
				int rc = modbus_receive(ctx, query);
				if (rc > 0) modbus_reply(ctx, query, rc, m);
				else if (rc == -1) break;
			}
			close(modbus_get_socket(ctx));
		}
	}
	modbus_mapping_free(m);
	modbus_free(ctx);
	return 0;
}
