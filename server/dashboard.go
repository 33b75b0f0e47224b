package server

import (
	"context"
	"encoding/json"
	"time"

	"github.com/stunfault/stunfault/faults"
	"github.com/stunfault/stunfault/server/control"
	"github.com/stunfault/stunfault/server/dashboard"
	"github.com/stunfault/stunfault/server/trace"
)

// dashboardFirst is how many trace messages and journal entries the page
// at GET / starts with (the newest); it reads older ones no more.
const dashboardFirst = 2000

// dashboardData is what GET / inlines into the page: each field is the
// result of the control op (or GET /trace) the page would otherwise ask for.
type dashboardData struct {
	Now       time.Time       `json:"now"`
	Hello     json.RawMessage `json:"hello"`
	Stats     json.RawMessage `json:"stats"`
	Rules     json.RawMessage `json:"rules"`
	Scenarios json.RawMessage `json:"scenarios"`
	Journal   json.RawMessage `json:"journal"`
	Trace     trace.Page      `json:"trace"`
}

// newDashboard returns the page's handler, on the control handler's token
// and Origin rules.
func (s *Server) newDashboard() *dashboard.Handler {
	return dashboard.New(dashboard.Options{
		AllowsPage:    s.ctl.AllowsPage,
		TokenRequired: s.ctl.TokenRequired(),
		Snapshot:      s.dashboardSnapshot,
		Logger:        s.log.With("component", "dashboard"),
	})
}

// dashboardSnapshot runs the ops the page starts from, as the page would.
func (s *Server) dashboardSnapshot(ctx context.Context) (any, error) {
	d := dashboardData{Now: s.clk.Now()}
	var err error
	for _, op := range []struct {
		name string
		dst  *json.RawMessage
	}{
		{control.OpHello, &d.Hello}, {control.OpStatsGet, &d.Stats},
		{control.OpRulesList, &d.Rules}, {control.OpScenariosList, &d.Scenarios},
	} {
		if *op.dst, err = s.ctl.Do(ctx, op.name, nil); err != nil {
			return nil, err
		}
	}
	last := s.eng.Journal().LastSeq()
	q := control.JournalRequest{Query: faults.Query{SinceSeq: last - min(last, dashboardFirst)}}
	if d.Journal, err = s.ctl.Do(ctx, control.OpJournalQuery, q); err != nil {
		return nil, err
	}
	tl := s.Trace().LastSeq()
	d.Trace = s.TraceSince(tl-min(tl, dashboardFirst), dashboardFirst)
	return d, nil
}
