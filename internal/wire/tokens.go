package wire

import "github.com/dpe-engine/dpe/internal/model"

// TokenRequest is the body of POST /v1/tokens.
type TokenRequest struct {
	Name string     `json:"name"`
	Role model.Role `json:"role"`
	// Triggers: for a trigger token, the name patterns (path.Match) of
	// the triggers it may use; none: all.
	Triggers []string `json:"triggers,omitempty"`
	// Types: for a processor token, the patterns (path.Match) of the job
	// types it may claim and report; none: all.
	Types []string `json:"types,omitempty"`
}

// TokenCreated answers POST /v1/tokens: the token and its secret, which
// the server does not keep and never shows again.
type TokenCreated struct {
	Token  model.Token `json:"token"`
	Secret string      `json:"secret"`
}
