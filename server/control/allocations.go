package control

import (
	"errors"
	"fmt"
	"net/netip"
)

// ErrUnknownAllocation is wrapped by a Backend's ExpireAllocations when no
// live allocation matches the selector; the handler answers it with
// unknown_allocation.
var ErrUnknownAllocation = errors.New("no such allocation")

// ErrUnknownPermission is wrapped by a Backend's ExpirePermissions when the
// selected allocations have no live permission for the peer; the handler
// answers it with unknown_allocation on the field peer.
var ErrUnknownPermission = errors.New("no such permission")

// ErrUnknownChannel is wrapped by a Backend's ExpireChannels when the
// selected allocations have no live binding of the channel; the handler
// answers it with unknown_allocation on the field channel.
var ErrUnknownChannel = errors.New("no such channel binding")

func (h *Handler) opAllocationsList(r *request) (any, *Error) {
	if e := r.decode(&struct{}{}); e != nil {
		return nil, e
	}
	return AllocationsResult{Allocations: orEmptyAllocs(h.b.Allocations())}, nil
}

func (h *Handler) opAllocationsExpire(r *request) (any, *Error) {
	var sel AllocationSelector
	if e := r.decode(&sel); e != nil {
		return nil, e
	}
	if e := checkSelector(&sel); e != nil {
		return nil, e
	}
	out, err := h.b.ExpireAllocations(r.ctx, sel)
	if err != nil {
		return nil, expireError(err, sel)
	}
	return AllocationsResult{Allocations: orEmptyAllocs(out)}, nil
}

func (h *Handler) opPermissionsExpire(r *request) (any, *Error) {
	var sel PermissionSelector
	if e := r.decode(&sel, "peer"); e != nil {
		return nil, e
	}
	if e := checkSelector(&sel.AllocationSelector); e != nil {
		return nil, e
	}
	peer, err := netip.ParseAddr(sel.Peer)
	if err != nil {
		return nil, &Error{Code: CodeBadRequest, Field: "peer", Message: "peer: " + err.Error() + " (want the peer's IP address, as allocations.list shows it)"}
	}
	sel.Peer = peer.Unmap().String()
	out, err := h.b.ExpirePermissions(r.ctx, sel)
	switch {
	case errors.Is(err, ErrUnknownPermission):
		return nil, &Error{Code: CodeUnknownAllocation, Field: "peer", Message: "no live permission for " + sel.Peer + " in the allocations of " + sel.AllocationSelector.String()}
	case err != nil:
		return nil, expireError(err, sel.AllocationSelector)
	case out == nil:
		out = []ExpiredPermission{}
	}
	return PermissionsResult{Permissions: out}, nil
}

func (h *Handler) opChannelsExpire(r *request) (any, *Error) {
	var sel ChannelSelector
	if e := r.decode(&sel, "channel"); e != nil {
		return nil, e
	}
	if e := checkSelector(&sel.AllocationSelector); e != nil {
		return nil, e
	}
	if sel.Channel < MinChannel || sel.Channel > MaxChannel {
		return nil, &Error{Code: CodeBadRequest, Field: "channel", Message: fmt.Sprintf("channel: %d is not a channel number (want %d to %d, 0x4000 to 0x7FFF)", sel.Channel, MinChannel, MaxChannel)}
	}
	out, err := h.b.ExpireChannels(r.ctx, sel)
	switch {
	case errors.Is(err, ErrUnknownChannel):
		return nil, &Error{Code: CodeUnknownAllocation, Field: "channel", Message: fmt.Sprintf("no live binding of channel %d in the allocations of %s", sel.Channel, sel.AllocationSelector)}
	case err != nil:
		return nil, expireError(err, sel.AllocationSelector)
	case out == nil:
		out = []ExpiredChannel{}
	}
	return ChannelsResult{Channels: out}, nil
}

// checkSelector checks that sel has exactly one selector, and unmaps its
// client address.
func checkSelector(sel *AllocationSelector) *Error {
	n := 0
	for _, set := range []bool{sel.Client != "", sel.Username != "", sel.All} {
		if set {
			n++
		}
	}
	if n != 1 {
		return &Error{Code: CodeBadRequest, Field: "client", Message: "want exactly one of client (address:port), username or all"}
	}
	if sel.Client != "" {
		ap, err := netip.ParseAddrPort(sel.Client)
		if err != nil {
			return &Error{Code: CodeBadRequest, Field: "client", Message: "client: " + err.Error() + " (want the client's address:port, as allocations.list shows it)"}
		}
		sel.Client = netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port()).String()
	}
	return nil
}

// expireError answers a Backend's error for the allocations sel selects.
func expireError(err error, sel AllocationSelector) *Error {
	if errors.Is(err, ErrUnknownAllocation) {
		field := "client"
		switch {
		case sel.Username != "":
			field = "username"
		case sel.All:
			field = "all"
		}
		return &Error{Code: CodeUnknownAllocation, Field: field, Message: "no live allocation for " + sel.String()}
	}
	return &Error{Code: CodeInternal, Message: err.Error()}
}

func orEmptyAllocs(a []Allocation) []Allocation {
	if a == nil {
		return []Allocation{}
	}
	return a
}

func (h *Handler) opNoncesRotate(r *request) (any, *Error) {
	if e := r.decode(&struct{}{}); e != nil {
		return nil, e
	}
	return RotateResult{Rotation: h.b.RotateNonces()}, nil
}

func (h *Handler) opConnectionsClose(r *request) (any, *Error) {
	var req ConnectionRequest
	if e := r.decode(&req, "client"); e != nil {
		return nil, e
	}
	ap, err := netip.ParseAddrPort(req.Client)
	if err != nil {
		return nil, &Error{Code: CodeBadRequest, Field: "client", Message: "client: " + err.Error() + " (want the client's address:port)"}
	}
	client := netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port()).String()
	if err := h.b.CloseConnection(r.ctx, client); err != nil {
		if errors.Is(err, ErrUnknownAllocation) {
			return nil, &Error{Code: CodeUnknownAllocation, Field: "client", Message: "no TCP or TLS connection from " + client}
		}
		return nil, &Error{Code: CodeInternal, Message: err.Error()}
	}
	return ConnectionRequest{Client: client}, nil
}
