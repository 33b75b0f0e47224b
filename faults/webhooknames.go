package faults

import (
	"errors"
	"fmt"
	"slices"
	"strings"
)

// WebhookNamer is implemented by Signals that know which webhooks exist (the
// server's webhook.Hub does). With such Signals the engine refuses a rule
// whose match names any other webhook, as the config refuses it, so a rule
// the control socket accepts is one the config file would accept too.
type WebhookNamer interface {
	// Names returns the webhooks' names, sorted.
	Names() []string
}

// CheckWebhookName returns the error for r when its match names a webhook
// that is not among names (sorted), and nil otherwise (no webhook match, a
// known name, or "" for every webhook). The config and the engine both use
// it, so they refuse the same rules with the same words.
func CheckWebhookName(r *Rule, names []string) *FieldError {
	w := r.Match.Webhook
	if w == nil || w.Name == "" || !ValidName(w.Name) || slices.Contains(names, w.Name) {
		return nil
	}
	have := "none"
	if len(names) > 0 {
		have = strings.Join(names, ", ")
	}
	return &FieldError{Field: "match.webhook.name", Msg: fmt.Sprintf("unknown webhook %q (have %s)", w.Name, have)}
}

// compileRule compiles r for this engine: [Rule.Validate]'s checks, and the
// webhook name against the engine's Signals when they name their webhooks.
// It reads nothing e.mu guards: the engine calls it with the lock released.
func (e *Engine) compileRule(r Rule) (*compiledRule, error) {
	if e.compileHook != nil {
		e.compileHook(&r)
	}
	c, err := compile(r)
	n, ok := e.signals.(WebhookNamer)
	if !ok {
		return c, err
	}
	fe := CheckWebhookName(&r, n.Names())
	switch {
	case fe == nil:
		return c, err
	case err == nil:
		return nil, fe
	}
	return nil, errors.Join(err, fe)
}
