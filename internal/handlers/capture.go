package handlers

// tailSize is how much of stderr an ExitError carries.
const tailSize = 1024

// capture is an io.Writer that keeps the first max bytes written to it
// (the head, for the job's result), the last tailSize bytes (for error
// messages) and the total count. exec.Cmd writes to it from one goroutine
// and reads it only after Wait, so it needs no lock.
type capture struct {
	max   int
	head  []byte
	tail  []byte
	total int64
}

// Write keeps what fits and never fails, so a chatty program is not
// killed by a full pipe.
func (c *capture) Write(p []byte) (int, error) {
	c.total += int64(len(p))
	if room := c.max - len(c.head); room > 0 {
		c.head = append(c.head, p[:min(room, len(p))]...)
	}
	c.tail = append(c.tail, p...)
	if len(c.tail) > 2*tailSize {
		// Trim in bulk so the copying stays linear in what is written.
		c.tail = append(c.tail[:0], c.tail[len(c.tail)-tailSize:]...)
	}
	return len(p), nil
}

// truncated reports whether more was written than kept.
func (c *capture) truncated() bool { return c.total > int64(len(c.head)) }

// lastBytes returns the end of what was written, at most tailSize bytes.
func (c *capture) lastBytes() string {
	if len(c.tail) > tailSize {
		return string(c.tail[len(c.tail)-tailSize:])
	}
	return string(c.tail)
}
