package main

import (
	"net/http"
	"net/http/httptest"
)

// handlerTransport serves API calls in-process from the built-in
// coordinator's handler: no socket, no TLS, same JSON and status codes.
type handlerTransport struct{ h http.Handler }

func (t handlerTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	rec := httptest.NewRecorder()
	t.h.ServeHTTP(rec, req)
	resp := rec.Result()
	resp.Request = req
	return resp, nil
}
