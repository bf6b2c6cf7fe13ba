package ui

import (
	"net/http"
	"net/http/httptest"
	"testing"
	"time"
)

// FuzzPageQuery sends any query to the fleet page and any id and range
// to the gateway page: each is drawn (or not found), never an error.
func FuzzPageQuery(f *testing.F) {
	f.Add("sort=loss&dir=desc&per=2&page=3&q=gw&level=warning&refresh=10", "gw-1", "day")
	f.Add("per=-1&page=99999999999999999999&sort=%00", "\x00<script>", "x")
	f.Add("q=%ff%fe&level=problems", "", "week")
	now := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	s := testStore(f, now)
	feedHealthy(s, "gw-1", now, 0.05)
	feedHealthy(s, "gw-2", now, 0)
	srv, err := New(DefaultConfig(), s, nil)
	if err != nil {
		f.Fatal(err)
	}
	srv.now = func() time.Time { return now }
	h := srv.Handler()
	f.Fuzz(func(t *testing.T, query, id, rg string) {
		req := httptest.NewRequest(http.MethodGet, "/", nil)
		req.URL.RawQuery = query
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != http.StatusOK {
			t.Fatalf("fleet page ?%s: %d", query, rec.Code)
		}
		req = httptest.NewRequest(http.MethodGet, "/gateway", nil)
		q := req.URL.Query()
		q.Set("id", id)
		q.Set("range", rg)
		req.URL.RawQuery = q.Encode()
		rec = httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != http.StatusOK && rec.Code != http.StatusNotFound {
			t.Fatalf("gateway page %q %q: %d", id, rg, rec.Code)
		}
	})
}
