package alert

import (
	"bufio"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dpe-engine/dpe/internal/clock"
	"github.com/dpe-engine/dpe/internal/model"
)

// smtpSink is a tiny SMTP server (no STARTTLS, no auth) that keeps the
// envelope and data of every mail it accepts.
type smtpSink struct {
	ln    net.Listener
	mu    sync.Mutex
	mails []string // "MAIL FROM...|RCPT TO...|data"
	wg    sync.WaitGroup
}

func newSMTPSink(t *testing.T) *smtpSink {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &smtpSink{ln: ln}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s.wg.Add(1)
			go func() { defer s.wg.Done(); s.serve(c) }()
		}
	}()
	t.Cleanup(func() { ln.Close(); s.wg.Wait() })
	return s
}

func (s *smtpSink) serve(c net.Conn) {
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	r := bufio.NewReader(c)
	say := func(line string) { _, _ = c.Write([]byte(line + "\r\n")) }
	say("220 sink ready")
	var env []string
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			return
		}
		cmd := strings.ToUpper(strings.TrimSpace(line))
		switch {
		case strings.HasPrefix(cmd, "EHLO"), strings.HasPrefix(cmd, "HELO"):
			say("250-sink")
			say("250 8BITMIME")
		case strings.HasPrefix(cmd, "MAIL FROM"), strings.HasPrefix(cmd, "RCPT TO"):
			env = append(env, strings.TrimSpace(line))
			say("250 ok")
		case cmd == "DATA":
			say("354 go on")
			var data strings.Builder
			for {
				l, err := r.ReadString('\n')
				if err != nil {
					return
				}
				if l == ".\r\n" {
					break
				}
				data.WriteString(l)
			}
			s.mu.Lock()
			s.mails = append(s.mails, strings.Join(env, "|")+"|"+data.String())
			s.mu.Unlock()
			env = nil
			say("250 queued")
		case cmd == "QUIT":
			say("221 bye")
			return
		default:
			say("250 ok")
		}
	}
}

func (s *smtpSink) got() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.mails...)
}

// TestSMTP: a firing alert reaches a mail receiver as one mail, with the
// rule's summary in the subject.
func TestSMTP(t *testing.T) {
	st := openStore(t)
	sink := newSMTPSink(t)
	clk := clock.NewFake(t0)
	e := setup(t, st, Config{
		Receivers: []Receiver{{Name: "mail", SMTP: &SMTP{Addr: sink.ln.Addr().String(), From: "dpe@example.com", To: []string{"ops@example.com"}}}},
		Rules:     []Rule{{Name: "failed", Kind: model.AlertWorkflowFailed}},
	}, clk, "server-a")
	failInstance(t, st, "ingest-1", "ingest", t0)
	evaluate(t, e)
	mails := sink.got()
	if len(mails) != 1 {
		t.Fatalf("%d mails, want 1: %q", len(mails), mails)
	}
	m := mails[0]
	for _, want := range []string{"MAIL FROM:<dpe@example.com>", "RCPT TO:<ops@example.com>", "Subject: [dpe] FIRING: workflow ingest-1 (template ingest) failed", "rule failed"} {
		if !strings.Contains(m, want) {
			t.Errorf("mail lacks %q:\n%s", want, m)
		}
	}
	evaluate(t, e)
	if n := len(sink.got()); n != 1 {
		t.Fatalf("%d mails after a second evaluation, want 1", n)
	}
	res, err := e.Test(t.Context())
	if err != nil || len(res.Results) != 1 || !res.Results[0].OK {
		t.Fatalf("Test = %+v, %v", res, err)
	}
}
