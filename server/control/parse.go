package control

import (
	"errors"
	"fmt"

	"github.com/stunfault/stunfault/config"
)

// opRulesParse reads rules from text with the CLI's reader
// ([config.ParseRules]), so a page that has no TOML parser gets the rules,
// or the same messages `stunfault rules add` prints, each with its line.
// It changes nothing.
func (h *Handler) opRulesParse(r *request) (any, *Error) {
	var req ParseRulesRequest
	if e := r.decode(&req, "text"); e != nil {
		return nil, e
	}
	if req.Name == "" {
		req.Name = "input"
	}
	rules, err := config.ParseRules([]byte(req.Text), req.Name)
	if err == nil {
		return ParseRulesResult{Rules: rules}, nil
	}
	var errs config.Errors
	if !errors.As(err, &errs) || len(errs) == 0 {
		return nil, &Error{Code: CodeInvalidRule, Field: "text", Message: err.Error()}
	}
	// Each message is the line the CLI prints: NAME:LINE: FIELD: MSG.
	e := &Error{Code: CodeInvalidRule, Field: errs[0].Field, Line: errs[0].Line, Message: errs[0].Error()}
	if len(errs) > 1 {
		for _, ce := range errs {
			e.Details = append(e.Details, ErrorDetail{Field: ce.Field, Line: ce.Line, Message: ce.Error()})
		}
		e.Message = fmt.Sprintf("%s (and %d more)", e.Message, len(errs)-1)
	}
	return nil, e
}
