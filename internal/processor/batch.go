package processor

import (
	"context"
	"fmt"
	"sync"

	"go.opentelemetry.io/otel/trace"

	"github.com/dpe-engine/dpe/internal/client"
	"github.com/dpe-engine/dpe/internal/model"
	"github.com/dpe-engine/dpe/internal/tracing"
	"github.com/dpe-engine/dpe/internal/wire"
)

// maxBatch caps the outcomes sent in one call.
const maxBatch = 200

// batchSenders is how many batches may be in flight at once. One: the
// outcomes that finish while a batch is in flight all go in the next one
// (group commit), which on the noop bench made batches half as big again
// (6.5 to 10 jobs) as with two senders, for the same throughput. An idle
// processor still sends an outcome at once: the sender waits for nothing
// but the previous batch.
const batchSenders = 1

// completer delivers outcomes by group commit: outcomes that finish while
// a batch is in flight wait and go together in the next one, so a busy
// processor sends one call and the server makes one commit for many jobs,
// while an idle one sends each outcome at once.
type completer struct {
	c       *client.Client
	tracing *tracing.Provider
	in      chan *pendingCompletion
}

type pendingCompletion struct {
	comp model.Completion
	span trace.SpanContext // the job attempt's
	done chan error        // buffered 1
}

func newCompleter(c *client.Client, t *tracing.Provider) *completer {
	return &completer{c: c, tracing: t, in: make(chan *pendingCompletion)}
}

// run sends batches until ctx ends.
func (b *completer) run(ctx context.Context) {
	var wg sync.WaitGroup
	for range batchSenders {
		wg.Go(func() { b.sender(ctx) })
	}
	wg.Wait()
}

func (b *completer) sender(ctx context.Context) {
	for {
		var batch []*pendingCompletion
		select {
		case <-ctx.Done():
			return
		case p := <-b.in:
			batch = append(batch, p)
		}
	fill:
		for len(batch) < maxBatch {
			select {
			case p := <-b.in:
				batch = append(batch, p)
			default:
				break fill
			}
		}
		b.send(ctx, batch)
	}
}

// send delivers one batch and hands each outcome its own answer: nil, an
// *client.APIError of the item's status (409: lease lost), or the call's
// error for every item.
func (b *completer) send(ctx context.Context, batch []*pendingCompletion) {
	comps := make([]model.Completion, len(batch))
	spans := make([]trace.SpanContext, len(batch))
	for i, p := range batch {
		comps[i], spans[i] = p.comp, p.span
	}
	ctx, span := b.tracing.StartBatch(ctx, "report outcomes", spans)
	res, err := b.c.CompleteMany(ctx, comps)
	span.End()
	for i, p := range batch {
		switch {
		case err != nil:
			p.done <- err
		case res[i].Status == 200:
			p.done <- nil
		default:
			p.done <- &client.APIError{Status: res[i].Status, Problem: wire.Problem{
				Title: "completion refused", Status: res[i].Status, Detail: res[i].Error}}
		}
	}
}

// complete queues one outcome and waits for its answer.
func (b *completer) complete(ctx context.Context, comp model.Completion, span trace.SpanContext) error {
	p := &pendingCompletion{comp: comp, span: span, done: make(chan error, 1)}
	select {
	case b.in <- p:
	case <-ctx.Done():
		return fmt.Errorf("complete job %d: %w", comp.ID, ctx.Err())
	}
	return <-p.done
}
