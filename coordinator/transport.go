package coordinator

import (
	"bytes"
	"io"
	"net/http"
	"strconv"
)

// Transport returns the in-process transport for this storage unit's API
// client: it serves every call from InProcessHandler, with no socket and
// no TLS, and the same JSON and status codes as over HTTP.
func (c *Coordinator) Transport() http.RoundTripper {
	return handlerTransport{c.InProcessHandler()}
}

// handlerTransport serves API calls in-process from the built-in
// coordinator's handler: no socket, no TLS, same JSON and status codes.
type handlerTransport struct{ h http.Handler }

func (t handlerTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	w := &bufferedResponse{header: http.Header{}}
	t.h.ServeHTTP(w, req)
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return &http.Response{
		Status:        strconv.Itoa(w.status) + " " + http.StatusText(w.status),
		StatusCode:    w.status,
		Proto:         "HTTP/1.1",
		ProtoMajor:    1,
		ProtoMinor:    1,
		Header:        w.header,
		Body:          io.NopCloser(&w.body),
		ContentLength: int64(w.body.Len()),
		Request:       req,
	}, nil
}

// bufferedResponse is the http.ResponseWriter the in-process transport
// hands the handler; the replies are small JSON documents.
type bufferedResponse struct {
	header http.Header
	status int
	body   bytes.Buffer
}

func (b *bufferedResponse) Header() http.Header { return b.header }

func (b *bufferedResponse) WriteHeader(code int) {
	if b.status == 0 {
		b.status = code
	}
}

func (b *bufferedResponse) Write(p []byte) (int, error) {
	b.WriteHeader(http.StatusOK)
	return b.body.Write(p)
}
