package server

import "time"

// SetSteerClock makes the steering of srv's udp listeners (steer.go) read
// time from now instead of time.Now, so a test steps the 30 s lifetimes of
// tokens and steered clients with a faults.ManualClock.
func SetSteerClock(srv *Server, now func() time.Time) {
	for _, ul := range srv.udp {
		if st := ul.loops[0].steer; st != nil {
			st.mu.Lock()
			st.now = now
			st.mu.Unlock()
		}
	}
}
