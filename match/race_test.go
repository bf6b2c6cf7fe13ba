//go:build race

package match

// raceEnabled: under the race detector sync.Pool drops a quarter of what
// is put back, so regexp's pooled machines are made anew now and then and
// an allocation count says nothing; make unit counts them without it.
const raceEnabled = true
