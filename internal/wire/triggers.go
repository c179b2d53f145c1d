package wire

// The body of POST /v1/triggers/{name}/fire is a model.FireRequest, of
// POST /v1/triggers/{name}/observe a model.Observation; both are answered
// by a model.TriggerResult. GET /v1/triggers/{name} answers a
// model.Trigger, GET /v1/triggers and GET /v1/triggers/{name}/records
// Items of model.Trigger and model.TriggerRecord.

// ErrorReport is the body of POST /v1/triggers/{name}/error: a trigger
// role reports (Error set) or clears (Error empty) its last failure of a
// kind, shown by dpe trigger list.
type ErrorReport struct {
	Kind  string `json:"kind"`
	Error string `json:"error"`
}
