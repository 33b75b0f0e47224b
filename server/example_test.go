package server_test

import (
	"context"
	"fmt"
	"strings"

	"github.com/stunfault/stunfault/config"
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
