/*
 * A Modbus server (slave) built on libmodbus, the independent peer of the
 * interop tests in sensors/modbus. Compiled by the test with
 *   cc -o server libmodbus_server.c $(pkg-config --cflags --libs libmodbus)
 *
 *   server rtu DEVICE BAUD UNIT   RTU, 8E1, on a tty (one end of a socat pty pair)
 *   server tcp PORT               Modbus TCP on 127.0.0.1:PORT
 *
 * It prints "ready" on stdout once it listens. Its tables hold 500 entries
 * each, filled with the pattern the Go test expects (keep both in step):
 *   coil i = (i % 5 == 0), discrete i = (i % 7 < 3),
 *   holding i = i * 3 + 1, input i = 0xF000 ^ i.
 * Requests beyond the tables get ILLEGAL DATA ADDRESS from libmodbus.
 */
#include <errno.h>
#include <modbus.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define N 500

int main(int argc, char **argv) {
	if (argc < 3) {
		fprintf(stderr, "usage: %s rtu DEVICE BAUD UNIT | tcp PORT\n", argv[0]);
		return 2;
	}
	modbus_mapping_t *map = modbus_mapping_new(N, N, N, N);
	if (map == NULL) {
		fprintf(stderr, "mapping: %s\n", modbus_strerror(errno));
		return 1;
	}
	for (int i = 0; i < N; i++) {
		map->tab_bits[i] = (i % 5 == 0);
		map->tab_input_bits[i] = (i % 7 < 3);
		map->tab_registers[i] = (uint16_t)(i * 3 + 1);
		map->tab_input_registers[i] = (uint16_t)(0xF000 ^ i);
	}
	uint8_t query[MODBUS_TCP_MAX_ADU_LENGTH];
	int rtu = strcmp(argv[1], "rtu") == 0;
	modbus_t *ctx;
	if (rtu) {
		if (argc < 5) {
			fprintf(stderr, "rtu needs DEVICE BAUD UNIT\n");
			return 2;
		}
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
				modbus_reply(ctx, query, rc, map);
			} else if (rc == -1 && errno != EMBBADCRC && errno != ETIMEDOUT && errno != EMBBADDATA) {
				/* the line went away: the test is over */
				if (errno == EBADF || errno == EIO) break;
			}
		}
	} else {
		ctx = modbus_new_tcp("127.0.0.1", atoi(argv[2]));
		int s = ctx == NULL ? -1 : modbus_tcp_listen(ctx, 4);
		if (s == -1) {
			fprintf(stderr, "tcp %s: %s\n", argv[2], modbus_strerror(errno));
			return 1;
		}
		printf("ready\n");
		fflush(stdout);
		for (;;) {
			if (modbus_tcp_accept(ctx, &s) == -1) break;
			for (;;) {
				int rc = modbus_receive(ctx, query);
				if (rc > 0) {
					modbus_reply(ctx, query, rc, map);
				} else if (rc == -1) {
					break; /* connection closed: accept the next */
				}
			}
			close(modbus_get_socket(ctx));
		}
	}
	modbus_mapping_free(map);
	modbus_free(ctx);
	return 0;
}
