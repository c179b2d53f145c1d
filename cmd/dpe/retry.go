package main

import (
	"context"
	"fmt"
)

// jobRetry is "dpe job retry ID [--wait]": a new series of attempts of a
// failed or canceled job, queued again at once with its attempts counted
// from zero. The server refuses (409) a job in another state, and a job of
// a workflow step (retry the workflow instead).
func jobRetry(ctx context.Context, e *env, args []string) error {
	fs, g := newCommand("job retry", e)
	wait := fs.Bool("wait", false, "wait for the job to end; exit non-zero unless it succeeded")
	pos, err := g.parse(args)
	if err != nil {
		return err
	}
	id, err := jobByID(pos)
	if err != nil {
		return err
	}
	c, err := g.client()
	if err != nil {
		return err
	}
	j, err := c.RetryJob(ctx, id)
	if err != nil {
		return err
	}
	if !*wait {
		if g.json() {
			return printJSON(e.stdout, j)
		}
		fmt.Fprintf(e.stdout, "job %d retried (%s, up to %d attempts)\n", j.ID, j.State, j.MaxAttempts)
		return nil
	}
	return waitJobOutcome(ctx, e, g, c, j.ID)
}

// workflowRetry is "dpe workflow retry ID|NAME [--wait]": resume a failed
// or canceled instance from the steps that failed it, keeping the
// finished ones. The server refuses (409) an instance in another state and
// a sub-workflow (retry its parent).
func workflowRetry(ctx context.Context, e *env, args []string) error {
	fs, g := newCommand("workflow retry", e)
	wait := fs.Bool("wait", false, "wait for the end with a progress bar; exit non-zero unless it succeeded")
	pos, err := g.parse(args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return usagef("want exactly one instance ID or NAME")
	}
	c, err := g.client()
	if err != nil {
		return err
	}
	id, err := instanceID(ctx, c, pos[0])
	if err != nil {
		return err
	}
	inst, err := c.RetryWorkflow(ctx, id)
	if err != nil {
		return err
	}
	if *wait {
		return waitInstance(ctx, e, g, c, inst.ID)
	}
	if g.json() {
		return printJSON(e.stdout, inst)
	}
	fmt.Fprintf(e.stdout, "workflow %d %s retried (%s)\n", inst.ID, inst.Name, inst.State)
	return nil
}
