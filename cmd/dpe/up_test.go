package main

import (
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/dpe-engine/dpe/internal/config"
)

// TestUpLocations: dpe up defines loc:archive under its data directory
// (created at start) unless the config file defines it, and keeps the
// config's other locations.
func TestUpLocations(t *testing.T) {
	data := t.TempDir()
	own := filepath.Join(data, "archive")
	tests := []struct {
		name     string
		cfg      map[string][]string
		wantRoot string
		want     map[string][]string
	}{
		{"no locations", nil, own, map[string][]string{"archive": {own}}},
		{"other locations", map[string][]string{"proxy": {"/mnt/p"}}, own,
			map[string][]string{"proxy": {"/mnt/p"}, "archive": {own}}},
		{"config's archive", map[string][]string{"archive": {"/mnt/a", "/mnt/b"}}, "/mnt/a",
			map[string][]string{"archive": {"/mnt/a", "/mnt/b"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := &config.File{Locations: tt.cfg}
			root, err := upLocations(cfg, data)
			if err != nil {
				t.Fatal(err)
			}
			if root != tt.wantRoot || !reflect.DeepEqual(cfg.Locations, tt.want) {
				t.Fatalf("got %q %v, want %q %v", root, cfg.Locations, tt.wantRoot, tt.want)
			}
			if root == own {
				if fi, err := os.Stat(own); err != nil || !fi.IsDir() {
					t.Fatalf("archive root not created: %v", err)
				}
			}
		})
	}
}
