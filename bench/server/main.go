// Command server is the server side of the comparison in bench/: bare
// pion/turn v5, or stunfault (the same library `stunfault serve` runs), on
// UDP and TCP on one free loopback port, with the same realm, user and relay
// settings, so the two differ only by what stunfault adds.
//
//	go run ./bench/server -kind pion
//	go run ./bench/server -kind stunfault -rules 100
//	go run ./bench/server -kind stunfault -inject 403
//	go run ./bench/server -kind stunfault -rules 100 -trace 0   # the trace off
//	go run ./bench/server -kind pion -cpuprofile pion.pprof     # go tool pprof pion.pprof
//
// It prints one JSON line, {"udp":"127.0.0.1:PORT","tcp":"127.0.0.1:PORT"},
// once both sockets are bound, and serves until its standard input closes
// or it gets SIGINT or SIGTERM; it then exits 0 without a signal of its own,
// so valgrind's callgrind can count its instructions.
package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"runtime/pprof"
	"syscall"

	"github.com/pion/turn/v5"

	"github.com/stunfault/stunfault/config"
	"github.com/stunfault/stunfault/faults"
	"github.com/stunfault/stunfault/server"
)

const (
	realm = "stunfault.test"
	user  = "user"
	pass  = "pass"
)

func main() {
	kind := flag.String("kind", "stunfault", "pion (bare pion/turn v5) or stunfault")
	rules := flag.Int("rules", 0, "stunfault only: this many rules that never match a Binding (0 to 10000)")
	inject := flag.Int("inject", 0, "stunfault only: answer every Binding request with this error code (300-699; 0 = none)")
	traceSize := flag.Int("trace", config.Default().Server.TraceSize, "stunfault only: [server].trace_size, messages the trace keeps (0 = trace off)")
	loops := flag.Int("read-loops", config.Default().Server.ReadLoops, "stunfault only: [server].read_loops, UDP sockets on the port (0 = one per CPU, 1 = one, as bare pion)")
	addr := flag.String("listen", "127.0.0.1:0", "IP literal and port for UDP and TCP")
	cpuProfile := flag.String("cpuprofile", "", "write a CPU profile (go tool pprof) of the whole run to this file")
	flag.Parse()
	if *cpuProfile != "" {
		stopProfile, err := startProfile(*cpuProfile)
		if err != nil {
			fmt.Fprintln(os.Stderr, "bench/server:", err)
			os.Exit(1)
		}
		defer stopProfile()
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	go func() { // stdin closing is the way to stop without a signal
		_, _ = io.Copy(io.Discard, bufio.NewReader(os.Stdin))
		stop()
	}()
	if err := run(ctx, *kind, *addr, *rules, *inject, *traceSize, *loops); err != nil {
		fmt.Fprintln(os.Stderr, "bench/server:", err)
		os.Exit(1) //nolint:gocritic // the profile of a failed run is of no use
	}
}

// startProfile starts a CPU profile into the file path and returns what
// ends it.
func startProfile(path string) (func(), error) {
	f, err := os.Create(path)
	if err != nil {
		return nil, fmt.Errorf("-cpuprofile: %w", err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		_ = f.Close()
		return nil, fmt.Errorf("-cpuprofile: %w", err)
	}
	return func() {
		pprof.StopCPUProfile()
		_ = f.Close()
	}, nil
}

func run(ctx context.Context, kind, addr string, rules, inject, traceSize, loops int) error {
	if rules < 0 || rules > 10000 {
		return fmt.Errorf("-rules: want 0 to 10000, got %d", rules)
	}
	var udp, tcp string
	var closeFn func() error
	switch kind {
	case "pion":
		if rules != 0 || inject != 0 || traceSize != config.Default().Server.TraceSize || loops != config.Default().Server.ReadLoops {
			return errors.New("-rules, -inject, -trace and -read-loops apply to -kind stunfault only")
		}
		s, u, t, err := startPion(addr)
		if err != nil {
			return err
		}
		udp, tcp, closeFn = u, t, s.Close
	case "stunfault":
		s, err := startStunfault(ctx, addr, rules, inject, traceSize, loops)
		if err != nil {
			return err
		}
		u := s.TURNAddr("udp")
		t := s.TURNAddr("tcp")
		udp, tcp, closeFn = u.String(), t.String(), s.Close
	default:
		return fmt.Errorf("-kind: want pion or stunfault, got %q", kind)
	}
	line, _ := json.Marshal(map[string]string{"udp": udp, "tcp": tcp})
	fmt.Println(string(line))
	<-ctx.Done()
	return closeFn()
}

// startPion serves bare pion/turn v5 on one UDP socket and one TCP listener
// on the same port, with the realm, user and relay range stunfault uses.
func startPion(addr string) (*turn.Server, string, string, error) {
	pc, err := net.ListenPacket("udp4", addr)
	if err != nil {
		return nil, "", "", err
	}
	ln, err := net.Listen("tcp4", pc.LocalAddr().String())
	if err != nil {
		_ = pc.Close()
		return nil, "", "", err
	}
	key := turn.GenerateAuthKey(user, realm, pass)
	relay := func() turn.RelayAddressGenerator {
		return &turn.RelayAddressGeneratorPortRange{RelayAddress: net.IPv4(127, 0, 0, 1), Address: "127.0.0.1", MinPort: 49152, MaxPort: 65535}
	}
	s, err := turn.NewServer(turn.ServerConfig{
		Realm: realm,
		AuthHandler: func(ra *turn.RequestAttributes) (string, []byte, bool) {
			return ra.Username, key, ra.Username == user
		},
		PacketConnConfigs: []turn.PacketConnConfig{{PacketConn: pc, RelayAddressGenerator: relay()}},
		ListenerConfigs:   []turn.ListenerConfig{{Listener: ln, RelayAddressGenerator: relay()}},
	})
	if err != nil {
		_ = pc.Close()
		_ = ln.Close()
		return nil, "", "", err
	}
	return s, pc.LocalAddr().String(), ln.Addr().String(), nil
}

// startStunfault serves stunfault's default config on addr (UDP and TCP),
// with rules that never match a Binding, or one that answers every Binding
// request with inject, keeping traceSize messages in the trace, on loops
// UDP read loops ([server].read_loops; New validates it).
func startStunfault(ctx context.Context, addr string, rules, inject, traceSize, loops int) (*server.Server, error) {
	cfg := config.Default()
	cfg.Server.TraceSize = traceSize
	cfg.Server.ReadLoops = loops
	cfg.Listen = []config.Listener{{Transport: "udp", Address: addr}, {Transport: "tcp", Address: addr}}
	cfg.HTTP.Address = "127.0.0.1:0"
	methods := []string{"allocate", "refresh", "createpermission", "channelbind"}
	for i := range rules {
		cfg.Rules = append(cfg.Rules, faults.Rule{
			ID:     fmt.Sprintf("other-%d", i),
			Match:  faults.Match{Methods: []string{methods[i%len(methods)]}, Sources: []string{"192.0.2.0/24"}},
			Action: faults.Action{Type: "error", Code: 403},
		})
	}
	if inject != 0 {
		cfg.Rules = append(cfg.Rules, faults.Rule{
			ID:     "inject",
			Match:  faults.Match{Methods: []string{"binding"}, Classes: []string{"request"}},
			Action: faults.Action{Type: "error", Code: inject},
		})
	}
	s, err := server.New(cfg)
	if err != nil {
		return nil, err
	}
	if err := s.Start(ctx); err != nil {
		return nil, err
	}
	return s, nil
}
