// Package examples embeds the example workflow templates, so `dpe up` can
// import them on a fresh machine (its inbox watcher starts "ingest-move").
package examples

import "embed"

// Templates holds templates/*.yaml.
//
//go:embed templates/*.yaml
var Templates embed.FS
