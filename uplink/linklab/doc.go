// Package linklab is a lab link between two network namespaces for tests
// and benchmarks.
//
// A Lab is two fresh namespaces, one for the gateway and one for the
// collector, joined by a veth pair with fixed addresses (Gateway.Addr,
// Collector.Addr); or, with Options.Delay, by two TUN devices and a wire in
// this process that holds each packet for the delay, since this kernel has
// no netem to give a link latency. Each namespace can run commands (Command) and open
// sockets from this process (Listen, ListenUDP, Dial), so a test can put a
// real weir and weir-collector on either side of the link and spoil the
// link between them:
//
//   - SetLoss drops a random share of the packets in one direction with
//     nftables (`numgen random mod 100 < N drop`), for this kernel has no
//     netem;
//   - Block drops everything both ways, an outage, and Unblock restores the
//     loss that was set.
//
// Loss is made on the receiving side, in an input hook of an inet table
// in the namespace the packet enters. A drop there looks to both ends like
// a packet lost on the line; a drop on the output hook would instead fail
// the sender's own send with EPERM (UDP) or make the kernel retry at once
// (TCP), neither of which a real fiber does. Segmentation offloads are
// turned off on the veth pair, so one drop loses one wire-sized packet, not
// a 64 KiB super-packet.
//
// A Relay (StartRelay) is a NAT-like UDP forwarder in the gateway's
// namespace that can change the source port and address it uses toward
// the collector mid-session: the test for DTLS Connection IDs.
//
// Everything here needs root, ip (iproute2), nft (nftables) and ethtool;
// Available says why not. Namespace names carry the creating process's id,
// so New removes the leftovers of a crashed earlier run and parallel runs
// never clash.
//
// docs/ARCHITECTURE.md lists it as test equipment: it never ships in the
// firmware.
package linklab
