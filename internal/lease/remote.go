package lease

import (
	"context"
	"time"

	"github.com/dpe-engine/dpe/internal/client"
	"github.com/dpe-engine/dpe/internal/model"
	"github.com/dpe-engine/dpe/internal/store"
)

// Remote takes named leases through a server's API (/v1/leases), for roles
// that talk only to servers.
type Remote struct{ Client *client.Client }

// LeaseAcquire takes or renews the lease; held by another is
// model.ErrConflict.
func (r Remote) LeaseAcquire(ctx context.Context, name, holder string, ttl time.Duration) (model.Lease, error) {
	// One attempt window per renewal: retrying past the lease's end would
	// be pointless, and the elector bounds ctx accordingly.
	return r.Client.LeaseAcquire(ctx, name, holder, ttl)
}

// LeaseRelease frees the lease if holder holds it.
func (r Remote) LeaseRelease(ctx context.Context, name, holder string) error {
	return r.Client.LeaseRelease(ctx, name, holder)
}

// Local takes named leases straight from the store, for duties that run
// inside a server.
type Local struct {
	Store store.LeaseStore
	Now   func() time.Time
}

// LeaseAcquire takes or renews the lease.
func (l Local) LeaseAcquire(ctx context.Context, name, holder string, ttl time.Duration) (model.Lease, error) {
	return l.Store.LeaseAcquire(ctx, name, holder, ttl, l.Now())
}

// LeaseRelease frees the lease if holder holds it.
func (l Local) LeaseRelease(ctx context.Context, name, holder string) error {
	return l.Store.LeaseRelease(ctx, name, holder)
}
