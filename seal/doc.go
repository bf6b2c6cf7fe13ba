// Package seal owns the gateway's signed tree heads: the forward-secure
// Ed25519 key that evolves one epoch per seal (Keys), the seal's signed
// statement and its encoding (Head, Seal), and the verification of a
// gateway's log from its records and seals (Verifier), shared by the
// collector's live check and the verify commands.
//
// Each seal closes an epoch: it is signed with that epoch's key and names
// the next epoch's public key, and the gateway erases the epoch's private
// key (overwritten, fsynced, replaced) once the seal is durably spooled.
// Whoever takes the gateway later holds only a key no seal has used yet,
// so cannot forge a seal of any earlier epoch. The chain starts at the key
// registered when the gateway was provisioned.
//
// docs/ARCHITECTURE.md ("The tamper-evident log") gives the layout, the
// order of a seal's steps, and the threat model.
package seal
