package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/dpe-engine/dpe/internal/coredb"
	"github.com/dpe-engine/dpe/internal/model"
	"github.com/dpe-engine/dpe/internal/store"
	"github.com/dpe-engine/dpe/internal/token"
	"github.com/dpe-engine/dpe/internal/wire"
)

// runToken creates, lists and revokes bearer tokens: through the server
// with an admin token, or with --db straight in the core database (how the
// first admin token of a `dpe server` is made).
func runToken(ctx context.Context, e *env, args []string) error {
	if len(args) == 0 {
		return usagef("want a subcommand: create --role ROLE --name NAME, list, revoke NAME")
	}
	verb := args[0]
	fs, g := newCommand("token "+verb, e)
	role := fs.String("role", "", "role of the new token: admin, operator, viewer, processor or trigger")
	name := fs.String("name", "", "name of the new token (letters, digits, . _ -)")
	var triggers listFlag
	fs.Var(&triggers, "triggers", "trigger token: name or glob of the triggers it may use (repeatable or comma-separated; none: all)")
	var types listFlag
	fs.Var(&types, "types", "processor token: job type or glob of the types it may claim and report, e.g. 'audio.*,util.copy' (repeatable or comma-separated; none: all)")
	db := fs.String("db", "", "work on this core database directly instead of through the server (bootstrap)")
	pos, err := g.parse(args[1:])
	if err != nil {
		return err
	}
	tokens, err := tokenBackend(ctx, g, *db)
	if err != nil {
		return err
	}
	defer tokens.close()
	switch verb {
	case "create":
		if len(pos) > 0 {
			return usagef("unexpected argument %q", pos[0])
		}
		if err := token.CheckName(*name); err != nil {
			return usagef("--name: %v", err)
		}
		if err := token.CheckRole(model.Role(*role)); err != nil {
			return usagef("--role: %v", err)
		}
		pats, typePats := patterns(triggers), patterns(types)
		if err := token.CheckTriggers(model.Role(*role), pats); err != nil {
			return usagef("--triggers: %v", err)
		}
		if err := token.CheckTypes(model.Role(*role), typePats); err != nil {
			return usagef("--types: %v", err)
		}
		res, err := tokens.create(ctx, wire.TokenRequest{Name: *name, Role: model.Role(*role), Triggers: pats, Types: typePats})
		if err != nil {
			return err
		}
		if g.json() {
			return printJSON(e.stdout, res)
		}
		fmt.Fprintf(e.stderr, "token %s (%s) created; it is shown only now:\n", res.Token.Name, res.Token.Role)
		fmt.Fprintln(e.stdout, res.Secret)
		return nil
	case "list":
		if len(pos) > 0 {
			return usagef("unexpected argument %q", pos[0])
		}
		list, err := tokens.list(ctx)
		if err != nil {
			return err
		}
		if g.json() {
			return printJSON(e.stdout, wire.Items[model.Token]{Items: list})
		}
		tb := newTable(e.stdout, "NAME", "ROLE", "SCOPE", "CREATED", "REVOKED")
		for _, t := range list {
			revoked := "-"
			if !t.Revoked.IsZero() {
				revoked = t.Revoked.Format(time.RFC3339)
			}
			tb.row(t.Name, t.Role, dash(strings.Join(t.Scope(), ",")), t.Created.Format(time.RFC3339), revoked)
		}
		tb.flush()
		return nil
	case "revoke":
		if len(pos) != 1 {
			return usagef("want one NAME")
		}
		if err := tokens.revoke(ctx, pos[0]); err != nil {
			return err
		}
		if !g.json() {
			fmt.Fprintf(e.stdout, "token %s revoked\n", pos[0])
		}
		return nil
	default:
		return usagef("unknown subcommand %q: want create, list or revoke", verb)
	}
}

// tokenOps is where `dpe token` works: the server's API or the store.
type tokenOps struct {
	create func(ctx context.Context, req wire.TokenRequest) (wire.TokenCreated, error)
	list   func(ctx context.Context) ([]model.Token, error)
	revoke func(ctx context.Context, name string) error
	close  func()
}

func tokenBackend(ctx context.Context, g *globals, db string) (tokenOps, error) {
	if db == "" {
		c, err := g.client()
		if err != nil {
			return tokenOps{}, err
		}
		return tokenOps{
			create: func(ctx context.Context, req wire.TokenRequest) (wire.TokenCreated, error) {
				return c.CreateToken(ctx, req)
			},
			list:   func(ctx context.Context) ([]model.Token, error) { return c.ListTokens(ctx) },
			revoke: func(ctx context.Context, name string) error { return c.RevokeToken(ctx, name) },
			close:  c.Close,
		}, nil
	}
	st, err := coredb.Open(ctx, db, slog.New(slog.DiscardHandler))
	if err != nil {
		return tokenOps{}, err
	}
	ts, ok := st.(store.TokenStore)
	if !ok {
		st.Close()
		return tokenOps{}, errNoTokenStore
	}
	return tokenOps{
		create: func(ctx context.Context, req wire.TokenRequest) (wire.TokenCreated, error) {
			t, secret, err := token.Create(ctx, ts, model.Token{Name: req.Name, Role: req.Role, Triggers: req.Triggers, Types: req.Types}, time.Now())
			return wire.TokenCreated{Token: t, Secret: secret}, err
		},
		list:   ts.TokenList,
		revoke: func(ctx context.Context, name string) error { return ts.TokenRevoke(ctx, name, time.Now()) },
		close:  func() { st.Close() },
	}, nil
}

// upToken makes sure the core database at dsn has the admin token kept in
// dir/admin.token (mode 0600), creating both on first start (or when the
// file's token is no longer valid). It returns the token and whether it is
// new (to be shown once).
func upToken(ctx context.Context, dsn, dir string, now time.Time) (string, bool, error) {
	path := filepath.Join(dir, localTokenName)
	st, err := coredb.Open(ctx, dsn, slog.New(slog.DiscardHandler))
	if err != nil {
		return "", false, err
	}
	defer st.Close()
	ts, ok := st.(store.TokenStore)
	if !ok {
		return "", false, errNoTokenStore
	}
	if old, err := readTokenFile(path); err == nil {
		if _, err := ts.TokenByHash(ctx, token.Hash(old)); err == nil {
			return old, false, nil
		} else if !errors.Is(err, model.ErrNotFound) {
			return "", false, err
		}
	} else if !errors.Is(err, os.ErrNotExist) {
		return "", false, fmt.Errorf("admin token: %w", err)
	}
	name := "local-admin"
	for i := 2; ; i++ {
		_, secret, err := token.Create(ctx, ts, model.Token{Name: name, Role: model.RoleAdmin}, now)
		if errors.Is(err, model.ErrConflict) {
			name = fmt.Sprintf("local-admin-%d", i)
			continue
		}
		if err != nil {
			return "", false, err
		}
		tmp := path + ".tmp"
		if err := os.WriteFile(tmp, []byte(secret+"\n"), 0o600); err != nil {
			return "", false, fmt.Errorf("admin token: %w", err)
		}
		if err := os.Rename(tmp, path); err != nil {
			return "", false, fmt.Errorf("admin token: %w", err)
		}
		return secret, true, nil
	}
}

// patterns splits the values of a repeatable, comma-separated flag.
func patterns(values []string) []string {
	var out []string
	for _, v := range values {
		for _, p := range strings.Split(v, ",") {
			if p = strings.TrimSpace(p); p != "" {
				out = append(out, p)
			}
		}
	}
	return out
}
