package wire

import "github.com/dpe-engine/dpe/internal/model"

// AuditPage answers GET /v1/audit: audit entries newest first, Total
// counting every match of the filters, Next the cursor of the next page
// (empty on a page shorter than the limit).
//
// The query (every parameter optional, each at most once; anything else
// is refused): since and until (RFC 3339; since inclusive, until
// exclusive), principal (a token name, "anonymous" or "-"), route (a
// pattern such as "POST /v1/jobs/{id}/cancel"), limit (1 to
// store.MaxAuditList, default 100) and cursor (the Next of the previous
// page).
type AuditPage = model.Page[model.AuditEntry]
