package alert

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/smtp"
	"strings"
	"time"

	"github.com/dpe-engine/dpe/internal/wire"
)

// SignatureHeader carries the HMAC-SHA256 of a webhook body.
const SignatureHeader = "X-DPE-Signature"

// Sign returns the SignatureHeader value of body under secret.
func Sign(secret, body []byte) string {
	m := hmac.New(sha256.New, secret)
	m.Write(body)
	return "sha256=" + hex.EncodeToString(m.Sum(nil))
}

// send delivers n to r once, within r's timeout.
func send(ctx context.Context, hc *http.Client, r *Receiver, n wire.AlertNotification) error {
	ctx, cancel := context.WithTimeout(ctx, r.Timeout)
	defer cancel()
	if r.SMTP != nil {
		return sendMail(ctx, r.SMTP, n)
	}
	body, err := json.Marshal(n)
	if err != nil {
		return fmt.Errorf("encode notification: %w", err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, r.Webhook, bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("webhook %s: %w", r.Name, err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "dpe-alerts")
	if len(r.secret) > 0 {
		req.Header.Set(SignatureHeader, Sign(r.secret, body))
	}
	resp, err := hc.Do(req)
	if err != nil {
		return fmt.Errorf("webhook %s: %w", r.Name, err)
	}
	defer resp.Body.Close()
	snippet, _ := io.ReadAll(io.LimitReader(resp.Body, 200))
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("webhook %s answered %s: %s", r.Name, resp.Status, strings.TrimSpace(string(snippet)))
	}
	return nil
}

// sendMail sends n as a plain-text mail through s (net/smtp, which uses
// STARTTLS when the server offers it).
func sendMail(ctx context.Context, s *SMTP, n wire.AlertNotification) error {
	var b strings.Builder
	fmt.Fprintf(&b, "From: %s\r\nTo: %s\r\n", s.From, strings.Join(s.To, ", "))
	fmt.Fprintf(&b, "Subject: [dpe] %s: %s\r\n", strings.ToUpper(n.Status), oneLine(n.Summary))
	fmt.Fprintf(&b, "Date: %s\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n", n.SentAt.Format(time.RFC1123Z))
	fmt.Fprintf(&b, "%s\r\n\r\n", n.Summary)
	for _, a := range n.Alerts {
		fmt.Fprintf(&b, "- [%s] %s (rule %s, since %s)\r\n", a.Notification, oneLine(a.Summary), a.Rule, a.Since.Format(time.RFC3339))
	}
	if n.More > 0 {
		fmt.Fprintf(&b, "- and %d more\r\n", n.More)
	}
	fmt.Fprintf(&b, "\r\nserver %s\r\n", n.Server)
	return deliverMail(ctx, s, []byte(b.String()))
}

// deliverMail is smtp.SendMail on a connection bounded by ctx (dialled
// with it, its deadline on every read and write): STARTTLS when the
// server offers it, PLAIN auth with a username.
func deliverMail(ctx context.Context, s *SMTP, msg []byte) (err error) {
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", s.Addr)
	if err != nil {
		return fmt.Errorf("smtp %s: %w", s.Addr, err)
	}
	if dl, ok := ctx.Deadline(); ok {
		_ = conn.SetDeadline(dl)
	}
	host, _, _ := net.SplitHostPort(s.Addr)
	c, err := smtp.NewClient(conn, host)
	if err != nil {
		conn.Close()
		return fmt.Errorf("smtp %s: %w", s.Addr, err)
	}
	defer c.Close()
	step := func(what string, err error) error {
		if err != nil {
			return fmt.Errorf("smtp %s: %s: %w", s.Addr, what, err)
		}
		return nil
	}
	if ok, _ := c.Extension("STARTTLS"); ok {
		if err := step("starttls", c.StartTLS(&tls.Config{ServerName: host})); err != nil {
			return err
		}
	}
	if s.Username != "" {
		if err := step("auth", c.Auth(smtp.PlainAuth("", s.Username, s.password, host))); err != nil {
			return err
		}
	}
	if err := step("mail from", c.Mail(s.From)); err != nil {
		return err
	}
	for _, to := range s.To {
		if err := step("rcpt to "+to, c.Rcpt(to)); err != nil {
			return err
		}
	}
	w, err := c.Data()
	if err := step("data", err); err != nil {
		return err
	}
	if _, err := w.Write(msg); err != nil {
		return step("data", err)
	}
	if err := step("data", w.Close()); err != nil {
		return err
	}
	return step("quit", c.Quit())
}

// oneLine keeps a header value on one line.
func oneLine(s string) string {
	s = strings.NewReplacer("\r", " ", "\n", " ").Replace(s)
	if len(s) > 200 {
		s = s[:200] + "…"
	}
	return s
}

func splitHostPort(addr string) (string, string, error) {
	h, p, err := net.SplitHostPort(addr)
	if err == nil && (h == "" || p == "") {
		err = fmt.Errorf("missing host or port")
	}
	return h, p, err
}
