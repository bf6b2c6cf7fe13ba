/*
 * A libmodbus server whose exceptions the test steers: the independent
 * peer of sensors/modbus/poll's exception interop test.
 *   cc -o exception_server exception_server.c $(pkg-config --cflags --libs libmodbus)
 *
 *   exception_server rtu DEVICE BAUD UNIT   RTU, 8E1, on a tty
 *   exception_server tcp PORT               Modbus TCP on 127.0.0.1:PORT
 *
 * Holding register i holds 1000 + i for i < 100; a read beyond gets
 * ILLEGAL DATA ADDRESS from libmodbus itself (modbus_reply). Commands on
 * stdin, one a line, each acknowledged with "ok" on stdout:
 *   busy ADDR N   reads starting at ADDR are answered SERVER DEVICE BUSY
 *                 (modbus_reply_exception) N times in a row, then once
 *                 with data, and so on; N 0 turns it off
 * It prints "ready" once it listens and exits when stdin closes.
 */
#include <errno.h>
#include <modbus.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define N 100

static int busy_addr = -1, busy_n = 0, busy_count = 0;
static char line[256];
static size_t used = 0;

/* commands reads what stdin holds without blocking; 0 once it is closed. */
static int commands(void) {
	struct pollfd p = {.fd = 0, .events = POLLIN};
	while (poll(&p, 1, 0) == 1) {
		ssize_t n = read(0, line + used, sizeof line - 1 - used);
		if (n <= 0) return 0;
		used += (size_t)n;
		line[used] = 0;
		char *nl;
		while ((nl = strchr(line, '\n')) != NULL) {
			*nl = 0;
			int addr, count;
			if (sscanf(line, "busy %d %d", &addr, &count) == 2) {
				busy_addr = addr;
				busy_n = count;
				busy_count = 0;
				printf("ok\n");
			} else {
				printf("bad command: %s\n", line);
			}
			fflush(stdout);
			size_t rest = used - (size_t)(nl + 1 - line);
			memmove(line, nl + 1, rest);
			used = rest;
			line[used] = 0;
		}
		if (used == sizeof line - 1) used = 0; /* a line too long: dropped */
	}
	return 1;
}

static void answer(modbus_t *ctx, const uint8_t *q, int len, modbus_mapping_t *m) {
	int h = modbus_get_header_length(ctx);
	int fn = q[h], addr = q[h + 1] << 8 | q[h + 2];
	if (fn >= 1 && fn <= 4 && addr == busy_addr && busy_n > 0) {
		if (busy_count < busy_n) {
			busy_count++;
			modbus_reply_exception(ctx, q, MODBUS_EXCEPTION_SLAVE_OR_SERVER_BUSY);
			return;
		}
		busy_count = 0;
	}
	modbus_reply(ctx, q, len, m);
}

int main(int argc, char **argv) {
	if (argc < 3) {
		fprintf(stderr, "usage: %s rtu DEVICE BAUD UNIT | tcp PORT\n", argv[0]);
		return 2;
	}
	modbus_mapping_t *m = modbus_mapping_new(N, N, N, N);
	if (m == NULL) return 1;
	for (int i = 0; i < N; i++) m->tab_registers[i] = (uint16_t)(1000 + i);
	uint8_t query[MODBUS_TCP_MAX_ADU_LENGTH];
	modbus_t *ctx;
	int rtu = strcmp(argv[1], "rtu") == 0;
	int sock = -1;
	if (rtu) {
		if (argc < 5) return 2;
		ctx = modbus_new_rtu(argv[2], atoi(argv[3]), 'E', 8, 1);
		if (ctx == NULL || modbus_set_slave(ctx, atoi(argv[4])) == -1 || modbus_connect(ctx) == -1) {
			fprintf(stderr, "rtu %s: %s\n", argv[2], modbus_strerror(errno));
			return 1;
		}
	} else {
		ctx = modbus_new_tcp("127.0.0.1", atoi(argv[2]));
		sock = ctx == NULL ? -1 : modbus_tcp_listen(ctx, 4);
		if (sock == -1) {
			fprintf(stderr, "tcp %s: %s\n", argv[2], modbus_strerror(errno));
			return 1;
		}
	}
	/* receive returns every 20 ms without a request, so commands are read
	 * while the line is quiet too */
	modbus_set_indication_timeout(ctx, 0, 20000);
	printf("ready\n");
	fflush(stdout);
	if (rtu) {
		while (commands()) {
			int rc = modbus_receive(ctx, query);
			if (rc > 0) {
				commands();
				answer(ctx, query, rc, m);
			} else if (rc == -1 && (errno == EBADF || errno == EIO)) {
				break;
			}
		}
	} else {
		for (;;) {
			/* commands are read while no master is connected too */
			struct pollfd p[2] = {{.fd = 0, .events = POLLIN}, {.fd = sock, .events = POLLIN}};
			if (poll(p, 2, -1) < 0) break;
			if (!commands()) break;
			if (!(p[1].revents & POLLIN)) continue;
			if (modbus_tcp_accept(ctx, &sock) == -1) break;
			while (commands()) {
				int rc = modbus_receive(ctx, query);
				if (rc > 0) {
					commands();
					answer(ctx, query, rc, m);
				} else if (rc == -1 && errno != ETIMEDOUT) {
					break; /* connection closed: accept the next */
				}
			}
			close(modbus_get_socket(ctx));
		}
	}
	modbus_mapping_free(m);
	modbus_free(ctx);
	return 0;
}
