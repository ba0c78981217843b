package console

import (
	"net/http/httptest"
)

func httptestGet(c *Console, path string) *httptest.ResponseRecorder {
	rec := httptest.NewRecorder()
	c.Handler().ServeHTTP(rec, httptest.NewRequest("GET", path, nil))
	return rec
}
