// Command smoke boots the Weir firmware on an emulated arm64 board
// (qemu-system-aarch64 -M virt -cpu cortex-a53) and checks, as a
// technician at its serial console would, that it does its job: it logs
// in to `weir console`, runs status, sensors and ptp, and sees the Modbus
// device polled over the board's second serial port, the readings spooled
// and acknowledged by a weir-collector on the host, and the clock's state.
// Then it cuts the board's power (kills QEMU) at random moments, boots it
// again from the same data disk each time, and counts what the collector
// holds: records written, acknowledged, lost and duplicated.
//
// `make image-smoke` runs it after scripts/image-smoke.sh has built what
// it boots (buildroot/smoke/initramfs.sh); buildroot/README.md says what it
// proves and what it does not; docs/ARCHITECTURE.md places it (the
// buildroot row).
package main
