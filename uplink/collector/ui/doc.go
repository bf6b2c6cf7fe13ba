// Package ui serves the fleet page of weir-collector (--ui-listen): one
// row per gateway with its health, sortable, filterable and paged on the
// server; and each gateway's page with its plots over the last hour, day
// or week, its events strip and its newest telemetry. It reads
// uplink/collector/fleet's store and never acts on a gateway.
//
// Every page is HTML drawn on the server, its plots inline SVG: no
// script runs, so the Content-Security-Policy forbids every script, and
// every asset (templates, stylesheet, icon) is embedded in the binary.
// Every string a gateway chose (its host name, endpoint and bus names,
// messages, field values) goes through html/template's escaping, with
// control characters and bidirectional overrides shown as escapes.
//
// The listener binds loopback unless told otherwise; beyond loopback it
// needs TLS and operators' client certificates or a bearer token from a
// file (or both). Before authentication it holds at most MaxConns
// connections (MaxConnsPerAddr per address) with header deadlines and
// size; after, MaxInFlight pages render at once, a page holds at most
// MaxPageSize rows, and failed logins back off per address.
//
// "The fleet page" in docs/ARCHITECTURE.md; the listener's threat model
// and bounds in docs/SECURITY.md.
package ui
