package holder

import (
	"os"
	"regexp"
	"strconv"
	"testing"
)

func TestNew(t *testing.T) {
	host, err := os.Hostname()
	if err != nil || host == "" {
		host = "unknown"
	}
	re := regexp.MustCompile(`^worker@` + regexp.QuoteMeta(host) + `:` + strconv.Itoa(os.Getpid()) + `:[a-z2-7]{8}$`)
	seen := map[string]bool{}
	for range 100 {
		id := New("worker")
		if !re.MatchString(id) {
			t.Fatalf("New(worker) = %q, want it to match %s", id, re)
		}
		if seen[id] {
			t.Fatalf("New(worker) returned %q twice", id)
		}
		seen[id] = true
	}
}

func TestFormat(t *testing.T) {
	tests := []struct {
		role, host string
		pid        int
		random     string
		want       string
	}{
		{"processor", "media-01", 4242, "k3x9q2ab", "processor@media-01:4242:k3x9q2ab"},
		{"scheduler", "a.example.net", 1, "aaaaaaaa", "scheduler@a.example.net:1:aaaaaaaa"},
		{"", "h", 7, "zzzzzzzz", "dpe@h:7:zzzzzzzz"},
	}
	for _, tt := range tests {
		if got := Format(tt.role, tt.host, tt.pid, tt.random); got != tt.want {
			t.Errorf("Format(%q, %q, %d, %q) = %q, want %q", tt.role, tt.host, tt.pid, tt.random, got, tt.want)
		}
	}
}
