package api

import (
	"net/http"
	"strings"

	"github.com/dpe-engine/dpe/internal/model"
	"github.com/dpe-engine/dpe/internal/wire"
)

// pathNames refuses, before any work, a path whose {name} is longer than
// wire.MaxNameLen or whose numeric {id} has more digits than an id can
// have (a processor's {id} is a name). The answer names the field and the
// limit without echoing the value.
func (a *API) pathNames(pattern string, h http.HandlerFunc) http.HandlerFunc {
	hasName := strings.Contains(pattern, "{name}")
	hasID := strings.Contains(pattern, "{id}")
	if !hasName && !hasID {
		return h
	}
	idIsName := strings.Contains(pattern, "/processors/{id}")
	return func(w http.ResponseWriter, r *http.Request) {
		var err error
		switch {
		case hasName:
			err = wire.CheckName("name", r.PathValue("name"))
		case idIsName:
			err = wire.CheckName("id", r.PathValue("id"))
		case len(r.PathValue("id")) > wire.MaxIDDigits:
			err = model.Invalid("id", "at most %d digits, got %d characters", wire.MaxIDDigits, len(r.PathValue("id")))
		}
		if err != nil {
			a.writeError(w, r, err)
			return
		}
		h(w, r)
	}
}
