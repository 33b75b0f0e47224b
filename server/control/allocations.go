package control

import (
	"errors"
	"net/netip"
)

// ErrUnknownAllocation is wrapped by a Backend's ExpireAllocations when no
// live allocation matches the selector; the handler answers it with
// unknown_allocation.
var ErrUnknownAllocation = errors.New("no such allocation")

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
	n := 0
	for _, set := range []bool{sel.Client != "", sel.Username != "", sel.All} {
		if set {
			n++
		}
	}
	if n != 1 {
		return nil, &Error{Code: CodeBadRequest, Field: "client", Message: "want exactly one of client (address:port), username or all"}
	}
	if sel.Client != "" {
		ap, err := netip.ParseAddrPort(sel.Client)
		if err != nil {
			return nil, &Error{Code: CodeBadRequest, Field: "client", Message: "client: " + err.Error() + " (want the client's address:port, as allocations.list shows it)"}
		}
		sel.Client = netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port()).String()
	}
	out, err := h.b.ExpireAllocations(r.ctx, sel)
	if err != nil {
		if errors.Is(err, ErrUnknownAllocation) {
			field := "client"
			switch {
			case sel.Username != "":
				field = "username"
			case sel.All:
				field = "all"
			}
			return nil, &Error{Code: CodeUnknownAllocation, Field: field, Message: "no live allocation for " + sel.String()}
		}
		return nil, &Error{Code: CodeInternal, Message: err.Error()}
	}
	return AllocationsResult{Allocations: orEmptyAllocs(out)}, nil
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
