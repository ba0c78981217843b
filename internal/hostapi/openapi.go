package hostapi

import (
	"net/http"

	"github.com/domainguard/domainguard/schemas"
)

// serveOpenAPI serves the checked-in OpenAPI document (no token needed:
// it describes the API, it holds no data).
func serveOpenAPI(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	_, _ = w.Write(schemas.OpenAPI)
}
