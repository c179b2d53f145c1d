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
	size := max(frames, 1) * r.format.Channels
	return pipe(ctx, r, func() []float64 { return make([]float64, size) },
		func(ctx context.Context, buf []float64) ([]float64, error) {
			n, err := r.Read(ctx, buf)
			return buf[:n], err
		},
		func(s []float64, read, known int64) error {
			return fn(Block{Samples: s, Read: read, Known: known})
		})
}

// RawBlock is a piece of the samples StreamRaw hands over, undecoded.
type RawBlock struct {
	Data   []byte // whole frames; valid until fn returns
	Format Format
	Read   int64 // bytes of samples read up to the end of this block
	Known  int64 // bytes of samples known so far (DataSize)
}

// Frames returns the number of frames in the block.
func (b RawBlock) Frames() int { return len(b.Data) / b.Format.BlockAlign }

// DecodeChannel decodes channel ch of the block's frames from frame from
// on into dst (see DecodeChannel). It may be called from several
// goroutines at once.
func (b RawBlock) DecodeChannel(dst []float64, ch, from int) {
	DecodeChannel(b.Format, dst, b.Data[min(from*b.Format.BlockAlign, len(b.Data)):], ch)
}

// StreamRaw is Stream without the decoding: the goroutine of its own only
// reads the file's bytes, and fn decodes what it needs with the block's
// DecodeChannel, on as many goroutines as it likes.
func (r *Reader) StreamRaw(ctx context.Context, frames int, fn func(RawBlock) error) error {
	size := max(frames, 1) * r.format.BlockAlign
	return pipe(ctx, r, func() []byte { return make([]byte, size) },
		func(ctx context.Context, buf []byte) ([]byte, error) {
			if err := ctx.Err(); err != nil {
				return nil, err
			}
			n, err := r.readRaw(ctx, buf)
			return buf[:n], err
		},
		func(b []byte, read, known int64) error {
			return fn(RawBlock{Data: b, Format: r.format, Read: read, Known: known})
		})
}

// pipe runs produce on a goroutine of its own, filling buffers made by
// newBuf, and hands each non-empty piece it returns to consume on the
// caller's goroutine, with the bytes of samples r had read and knew of
// when the piece was produced. produce returns io.EOF at the end.
func pipe[S ~[]E, E any](ctx context.Context, r *Reader, newBuf func() S, produce func(context.Context, S) (S, error), consume func(s S, read, known int64) error) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	const depth = 2 // pieces in flight: one being read, one being consumed
	free := make(chan S, depth)
	for range depth {
		free <- newBuf()
	}
	type piece struct {
		s           S
		read, known int64
		err         error
	}
	// Room for every buffer and a final error: the producer never blocks
	// on sending, so it ends as soon as ctx does or the data ends.
	out := make(chan piece, depth+1)
	go func() {
		defer close(out)
		for {
			var buf S
			select {
			case buf = <-free:
			case <-ctx.Done():
				out <- piece{err: ctx.Err()}
				return
			}
			s, err := produce(ctx, buf)
			if len(s) > 0 {
				out <- piece{s: s, read: r.BytesRead(), known: r.DataSize()}
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
			continue // draining, so the producer has ended when pipe returns
		}
		if err = p.err; err == nil {
			err = consume(p.s, p.read, p.known)
		}
		if err != nil {
			cancel()
			continue
		}
		free <- p.s[:cap(p.s)]
	}
	return err
}
