package wav

import (
	"context"
	"errors"
	"io"
)

// Block is a piece of the samples Stream hands over.
type Block struct {
	Samples []float64 // interleaved, whole frames; valid until fn returns
	Read    int64     // bytes of samples read up to the end of this block
	Known   int64     // bytes of samples known so far (DataSize)
}

// Stream reads the samples to the end, frames frames at a time, and calls
// fn with each piece on the caller's goroutine, while a goroutine of its
// own reads and decodes the next piece: a consumer as busy as the reader
// does not wait for it. It returns nil at the end of the data, or the
// first error of reading or of fn. The reader goroutine has ended when
// Stream returns, and the Reader must not be used while Stream runs.
func (r *Reader) Stream(ctx context.Context, frames int, fn func(Block) error) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	const depth = 2 // pieces in flight: one being read, one being consumed
	free := make(chan []float64, depth)
	for range depth {
		free <- make([]float64, max(frames, 1)*r.format.Channels)
	}
	type piece struct {
		b   Block
		err error
	}
	// Room for every buffer and a final error: the reader never blocks
	// on sending, so it ends as soon as ctx does or the data ends.
	out := make(chan piece, depth+1)
	go func() {
		defer close(out)
		for {
			var buf []float64
			select {
			case buf = <-free:
			case <-ctx.Done():
				out <- piece{err: ctx.Err()}
				return
			}
			n, err := r.Read(ctx, buf)
			if n > 0 {
				out <- piece{b: Block{Samples: buf[:n], Read: r.BytesRead(), Known: r.DataSize()}}
			} else {
				free <- buf
			}
			if err != nil {
				if !errors.Is(err, io.EOF) {
					out <- piece{err: err}
				}
				return
			}
		}
	}()
	var err error
	for p := range out {
		if err != nil {
			continue // draining, so the reader has ended when Stream returns
		}
		if err = p.err; err == nil {
			err = fn(p.b)
		}
		if err != nil {
			cancel()
			continue
		}
		free <- p.b.Samples[:cap(p.b.Samples)]
	}
	return err
}
