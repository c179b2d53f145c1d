package coredb

import (
	"context"
	"strings"
	"testing"
	"time"
)

// TestOpenErrorHidesPassword opens a database nobody listens on and checks
// that no piece of the password reaches the error.
func TestOpenErrorHidesPassword(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	_, err := Open(ctx, "postgres://u:hun@ter2PW@127.0.0.1:1/db?connect_timeout=2", nil)
	if err == nil {
		t.Fatal("Open of a closed port succeeded")
	}
	for _, part := range []string{"ter2PW", "hun"} {
		if strings.Contains(err.Error(), part) {
			t.Errorf("error %q contains %q of the password", err, part)
		}
	}
	if _, err := Engine("mysql://u:hun@ter2PW@h/db"); err == nil || strings.Contains(err.Error(), "ter2PW") {
		t.Errorf("Engine error = %v, want a refusal without the password", err)
	}
}
