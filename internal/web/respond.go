package web

import (
	"encoding/json"
	"net/http"
)

// WriteJSONError writes a GraphQL-shaped error body with the given status,
// for request errors answered before GraphQL execution.
func WriteJSONError(w http.ResponseWriter, status int, code, message string) {
	type ext struct {
		Code string `json:"code"`
	}
	type gqlErr struct {
		Message    string `json:"message"`
		Extensions ext    `json:"extensions"`
	}
	body := struct {
		Errors []gqlErr `json:"errors"`
	}{Errors: []gqlErr{{Message: message, Extensions: ext{Code: code}}}}
	writeJSON(w, status, body)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
