// Package httpout holds what the HTTP outputs (Splunk HEC, Elasticsearch
// bulk) share: a client with a CA file and an optional client
// certificate, gzip bodies, and reading a secret from a file.
//
// docs/ARCHITECTURE.md: "The life of one record", where outputs branch.
package httpout
