package server_test

import (
	"context"
	"fmt"
	"net"
	"strings"

	"github.com/pion/stun/v4"

	"github.com/stunfault/stunfault/config"
	"github.com/stunfault/stunfault/faults"
	"github.com/stunfault/stunfault/server"
)

// A server on free loopback ports, as a test or a program embeds it.
func ExampleNew() {
	cfg := config.Default()
	cfg.Listen = []config.Listener{{Transport: "udp", Address: "127.0.0.1:0"}}
	cfg.HTTP.Address = "127.0.0.1:0"

	srv, err := server.New(cfg) // validates; binds nothing yet
	if err != nil {
		fmt.Println(err)
		return
	}
	if err := srv.Start(context.Background()); err != nil { // binds every socket
		fmt.Println(err)
		return
	}
	defer srv.Close()

	for _, ice := range srv.ICEServers() {
		for _, u := range ice.URLs {
			fmt.Println(strings.TrimSpace(strings.Split(u, ":")[0] + " " + ice.Username))
		}
	}
	fmt.Println("port chosen:", srv.STUNAddr().Port() != 0)
	// Output:
	// stun
	// turn user
	// port chosen: true
}

// A rule added to a running server decides the very next message, and the
// journal records it. (Tests get the same with less code from
// server/servertest.)
func ExampleServer_Faults() {
	cfg := config.Default()
	cfg.Listen = []config.Listener{{Transport: "udp", Address: "127.0.0.1:0"}}
	cfg.HTTP.Address = "127.0.0.1:0"
	srv, err := server.New(cfg)
	if err != nil {
		fmt.Println(err)
		return
	}
	if err := srv.Start(context.Background()); err != nil {
		fmt.Println(err)
		return
	}
	defer srv.Close()

	if _, err := srv.Faults().Add(faults.Rule{
		ID:     "binding-403",
		Times:  1,
		Match:  faults.Match{Methods: []string{"binding"}},
		Action: faults.Action{Type: "error", Code: 403, Reason: "Forbidden"},
	}); err != nil {
		fmt.Println(err)
		return
	}

	conn, err := net.Dial("udp", srv.STUNAddr().String())
	if err != nil {
		fmt.Println(err)
		return
	}
	c, err := stun.NewClient(conn)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer c.Close()
	for range 2 {
		err := c.Do(stun.MustBuild(stun.TransactionID, stun.BindingRequest), func(e stun.Event) {
			var ec stun.ErrorCodeAttribute
			switch {
			case e.Error != nil:
				fmt.Println(e.Error)
			case ec.GetFrom(e.Message) == nil:
				fmt.Println("error", ec.Code, string(ec.Reason))
			default:
				fmt.Println(e.Message.Type)
			}
		})
		if err != nil {
			fmt.Println(err)
		}
	}
	fmt.Println("fired", srv.Faults().Journal().Count(faults.Query{Rule: "binding-403"}))
	// Output:
	// error 403 Forbidden
	// Binding success response
	// fired 1
}
