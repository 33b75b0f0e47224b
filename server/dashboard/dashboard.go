// Package dashboard is the page at GET / on stunfault's HTTP side: a live
// timeline of what the server saw (the trace's messages per client, the
// webhook requests as bars, the rules that fired), the rules with their
// counters and switches, the scenarios and the webhooks. The page is
// embedded in the binary (index.html, app.js, style.css: plain ES modules
// and SVG, nothing fetched from elsewhere) and drives the server through the
// control protocol only: POST /api/{op} for the ops, the /control WebSocket
// for events, GET /trace for the messages.
//
// The page itself is served to anyone; the data it starts from is inlined
// into it only for a request the control socket would accept from the same
// page (the token when one is set, and the Origin rules). Without it the page
// shows nothing but a box asking for the token.
package dashboard

import (
	"bytes"
	"context"
	"embed"
	"encoding/json"
	"log/slog"
	"net/http"
	"path"
	"strings"
)

//go:embed index.html app.js style.css
var files embed.FS

// Prefix is where the page's files are served: Prefix+"app.js" and so on.
const Prefix = "/dashboard/"

// placeholder is where index.html carries the page's first data.
const placeholder = `<script type="application/json" id="stunfault-data">null</script>`

// Options configures a [Handler].
type Options struct {
	// AllowsPage reports whether the page served for a request may carry
	// the server's data: control.Handler.AllowsPage.
	AllowsPage func(*http.Request) bool
	// TokenRequired reports whether the server requires a token (the page
	// then asks for one).
	TokenRequired bool
	// Snapshot returns the data the page starts from, encoded as JSON into
	// the page: each field the result of the control op (or GET /trace) of
	// the same name, so the page reads them as it reads the live answers.
	Snapshot func(ctx context.Context) (any, error)
	// Logger receives the page's failures. Nil means silence.
	Logger *slog.Logger
}

// Handler serves GET / (the page, with its first data inline) and GET
// Prefix+FILE (its files as they are).
type Handler struct {
	opts  Options
	index []byte
}

// New returns the dashboard's handler.
func New(opts Options) *Handler {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	index, err := files.ReadFile("index.html")
	if err != nil || !bytes.Contains(index, []byte(placeholder)) {
		panic("dashboard: index.html has no data placeholder") // a build mistake, caught by the tests
	}
	return &Handler{opts: opts, index: index}
}

// pageData is what GET / inlines: Auth is "ok" (Data is set), "token" (a
// token is needed) or "origin" (this host may not drive the server: the
// control socket would refuse the page too).
type pageData struct {
	Auth string `json:"auth"`
	Data any    `json:"data,omitempty"`
}

// ServeHTTP serves the page and its files.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	security(w, r)
	if name, ok := strings.CutPrefix(r.URL.Path, Prefix); ok {
		h.serveFile(w, name)
		return
	}
	if r.URL.Path != "/" {
		http.NotFound(w, r)
		return
	}
	pd := pageData{Auth: "ok"}
	switch {
	case h.opts.AllowsPage != nil && !h.opts.AllowsPage(r) && h.opts.TokenRequired:
		pd.Auth = "token"
	case h.opts.AllowsPage != nil && !h.opts.AllowsPage(r):
		pd.Auth = "origin"
	case h.opts.Snapshot != nil:
		data, err := h.opts.Snapshot(r.Context())
		if err != nil {
			// The page still works: it loads the same data itself.
			h.opts.Logger.Warn("dashboard: first data", "err", err)
		} else {
			pd.Data = data
		}
	}
	// json.Marshal escapes <, > and &, so the data cannot end the script
	// element it sits in.
	js, err := json.Marshal(pd)
	if err != nil {
		h.opts.Logger.Warn("dashboard: encoding first data", "err", err)
		js = []byte(`{"auth":"ok"}`)
	}
	page := bytes.Replace(h.index, []byte(placeholder),
		[]byte(`<script type="application/json" id="stunfault-data">`+string(js)+`</script>`), 1)
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	_, _ = w.Write(page)
}

// types are the content types of the page's files.
var types = map[string]string{
	".html": "text/html; charset=utf-8",
	".js":   "text/javascript; charset=utf-8",
	".css":  "text/css; charset=utf-8",
}

func (h *Handler) serveFile(w http.ResponseWriter, name string) {
	b, err := files.ReadFile(name)
	ct := types[path.Ext(name)]
	if err != nil || strings.Contains(name, "/") || ct == "" {
		http.Error(w, "404 page not found", http.StatusNotFound)
		return
	}
	w.Header().Set("Content-Type", ct)
	w.Header().Set("Cache-Control", "no-cache")
	_, _ = w.Write(b)
}

// security sets the headers that keep the page to itself: scripts, styles
// and connections only from its own origin (the WebSocket included), no
// framing by another page (a switch must not be clicked through a frame),
// no referrer.
func security(w http.ResponseWriter, r *http.Request) {
	hdr := w.Header()
	connect := "'self'"
	if plainHost(r.Host) {
		// 'self' covers ws: in CSP 3; older browsers need it named.
		scheme := "ws://"
		if r.TLS != nil {
			scheme = "wss://"
		}
		connect += " " + scheme + r.Host
	}
	hdr.Set("Content-Security-Policy", "default-src 'self'; img-src 'self' data:; connect-src "+connect+
		"; frame-ancestors 'none'; base-uri 'none'; form-action 'none'")
	hdr.Set("X-Frame-Options", "DENY")
	hdr.Set("X-Content-Type-Options", "nosniff")
	hdr.Set("Referrer-Policy", "no-referrer")
}

// plainHost reports whether a Host header is a plain host[:port] (letters,
// digits, '.', '-', ':', '[', ']'), safe to repeat in a header.
func plainHost(h string) bool {
	if h == "" {
		return false
	}
	for _, c := range h {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.ContainsRune(".-:[]", c)) {
			return false
		}
	}
	return true
}
