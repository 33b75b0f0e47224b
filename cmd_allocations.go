package main

import (
	"context"
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/stunfault/stunfault/server/control"
)

var allocationsCmd = &command{
	name:     "allocations",
	synopsis: "[list|expire|rotate-nonces|close] [-json] [-client ADDR:PORT | -username NAME | -all] [-peer IP | -channel N]",
	summary:  "list the live TURN allocations, or expire some as if their lifetime had run out",
	doc: `  stunfault allocations [list]       5-tuple, transport, username, relayed address,
                                     lifetime left, permissions, channels
  stunfault allocations expire -client ADDR:PORT | -username NAME | -all
                                     end them now: the client's next Refresh gets 437,
                                     its relayed data stops, a new Allocate succeeds
  stunfault allocations expire -client ADDR:PORT | -username NAME | -all -peer IP
                                     end their permission for the peer IP now: data
                                     between the relay and that peer stops both ways
                                     until a CreatePermission for it succeeds
  stunfault allocations expire -client ADDR:PORT | -username NAME | -all -channel N
                                     end their binding of channel N (0x4000-0x7FFF):
                                     the client's ChannelData on it is dropped, the
                                     peer's data comes as Data indications, until a
                                     ChannelBind of N to the same peer succeeds
  stunfault allocations rotate-nonces
                                     every client's next signed request gets 438 with
                                     a fresh NONCE, which its retry then uses
  stunfault allocations close -client ADDR:PORT
                                     close that client's TCP or TLS connection`,
	run: runAllocations,
}

// runAllocations is `stunfault allocations [list|expire]`.
func runAllocations(ctx context.Context, inv *invocation) error {
	fs := inv.flags()
	cf := fs.controlFlags()
	asJSON := fs.jsonFlag()
	var sel control.AllocationSelector
	fs.StringVar(&sel.Client, "client", "", "expire: the client's `ADDR:PORT`, as list shows it")
	fs.StringVar(&sel.Username, "username", "", "expire: every allocation of the user `NAME`")
	fs.BoolVar(&sel.All, "all", false, "expire: every allocation")
	peer := fs.String("peer", "", "expire: only their permission for the peer `IP`")
	channel := fs.String("channel", "", "expire: only their binding of channel `N` (16384-32767, or 0x4000-0x7FFF)")
	pos, err := fs.parse(inv.args, 0, 1, "list, expire, rotate-nonces or close")
	if err != nil {
		return err
	}
	sub := "list"
	if len(pos) == 1 {
		sub = pos[0]
	}
	if sub != "expire" && (*peer != "" || *channel != "") {
		return inv.usageErrorf("-peer and -channel are for expire")
	}
	switch sub {
	case "list":
		if sel != (control.AllocationSelector{}) {
			return inv.usageErrorf("-client, -username and -all are for expire")
		}
	case "expire":
		n := 0
		for _, set := range []bool{sel.Client != "", sel.Username != "", sel.All} {
			if set {
				n++
			}
		}
		if n != 1 {
			return inv.usageErrorf("expire wants exactly one of -client ADDR:PORT, -username NAME or -all")
		}
		switch {
		case *peer != "" && *channel != "":
			return inv.usageErrorf("expire takes -peer or -channel, not both")
		case *peer != "":
			return expirePermissions(ctx, inv, cf, *asJSON, control.PermissionSelector{AllocationSelector: sel, Peer: *peer})
		case *channel != "":
			n, err := strconv.ParseUint(*channel, 0, 16)
			if err != nil || uint16(n) < control.MinChannel || uint16(n) > control.MaxChannel {
				return inv.usageErrorf("-channel %q: want a channel number, 16384 to 32767 (0x4000 to 0x7FFF)", *channel)
			}
			return expireChannels(ctx, inv, cf, *asJSON, control.ChannelSelector{AllocationSelector: sel, Channel: uint16(n)})
		}
	case "rotate-nonces":
		if sel != (control.AllocationSelector{}) {
			return inv.usageErrorf("rotate-nonces takes no -client, -username or -all")
		}
		return cf.call(ctx, func(c *control.Client) error {
			n, err := c.RotateNonces(ctx)
			return show(inv.stdout, *asJSON, control.RotateResult{Rotation: n}, err, func(w io.Writer, r control.RotateResult) {
				fmt.Fprintf(w, "rotation %d: every client's next signed request gets 438 with a fresh nonce\n", r.Rotation)
			})
		})
	case "close":
		if sel.Client == "" || sel.Username != "" || sel.All {
			return inv.usageErrorf("close wants -client ADDR:PORT only")
		}
		return cf.call(ctx, func(c *control.Client) error {
			err := c.CloseConnection(ctx, sel.Client)
			return show(inv.stdout, *asJSON, control.ConnectionRequest{Client: sel.Client}, err, func(w io.Writer, r control.ConnectionRequest) {
				fmt.Fprintf(w, "closed the connection of %s\n", r.Client)
			})
		})
	default:
		return inv.usageErrorf("unknown subcommand %q (want list, expire, rotate-nonces or close)", sub)
	}
	return cf.call(ctx, func(c *control.Client) error {
		var list []control.Allocation
		var err error
		if sub == "list" {
			list, err = c.Allocations(ctx)
		} else {
			list, err = c.ExpireAllocations(ctx, sel)
		}
		return show(inv.stdout, *asJSON, control.AllocationsResult{Allocations: list}, err, func(w io.Writer, res control.AllocationsResult) {
			if sub == "expire" {
				fmt.Fprintf(w, "expired %s\n", plural(len(res.Allocations), "allocation"))
			}
			printAllocations(w, res.Allocations)
		})
	})
}

// expirePermissions is `stunfault allocations expire ... -peer IP`.
func expirePermissions(ctx context.Context, inv *invocation, cf *controlFlags, asJSON bool, sel control.PermissionSelector) error {
	return cf.call(ctx, func(c *control.Client) error {
		list, err := c.ExpirePermissions(ctx, sel)
		return show(inv.stdout, asJSON, control.PermissionsResult{Permissions: list}, err, func(w io.Writer, res control.PermissionsResult) {
			fmt.Fprintf(w, "expired %s\n", plural(len(res.Permissions), "permission"))
			for _, p := range res.Permissions {
				fmt.Fprintf(w, "%s (relay %s): permission for %s\n", p.Client, p.Relay, p.Peer)
			}
		})
	})
}

// expireChannels is `stunfault allocations expire ... -channel N`.
func expireChannels(ctx context.Context, inv *invocation, cf *controlFlags, asJSON bool, sel control.ChannelSelector) error {
	return cf.call(ctx, func(c *control.Client) error {
		list, err := c.ExpireChannels(ctx, sel)
		return show(inv.stdout, asJSON, control.ChannelsResult{Channels: list}, err, func(w io.Writer, res control.ChannelsResult) {
			fmt.Fprintf(w, "expired %s\n", plural(len(res.Channels), "channel binding"))
			for _, ch := range res.Channels {
				fmt.Fprintf(w, "%s (relay %s): channel %#x to %s\n", ch.Client, ch.Relay, ch.Number, ch.Peer)
			}
		})
	})
}

// printAllocations writes one line per allocation.
func printAllocations(w io.Writer, list []control.Allocation) {
	if len(list) == 0 {
		fmt.Fprintln(w, "no allocations")
		return
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "CLIENT\tSERVER\tTRANSPORT\tUSERNAME\tRELAY\tLIFETIME LEFT\tPERMISSIONS\tCHANNELS")
	for _, a := range list {
		var perms, chans []string
		for _, p := range a.Permissions {
			perms = append(perms, fmt.Sprintf("%s (%s)", p.Peer, p.LifetimeLeft.D().Round(1e9)))
		}
		for _, ch := range a.Channels {
			chans = append(chans, fmt.Sprintf("%#x %s", ch.Number, ch.Peer))
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", a.Client, a.Server, a.Transport, a.Username, a.Relay,
			a.LifetimeLeft.D().Round(1e9), orDash(strings.Join(perms, ", ")), orDash(strings.Join(chans, ", ")))
	}
	_ = tw.Flush()
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
