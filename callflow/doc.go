// Package callflow runs eslapp's calls: the Workflow Execute step — a CRM
// workflow requested while a prompt plays, the prompt stopped as its policy
// says when the outcome is known — in dialplan mode (one step, its inputs
// from wfe_ channel variables) and in flow mode (flows of actions compiled
// from the configuration).
//
// It owns what a call does and what eslapp check says about it, by the same
// rules: a step's inputs, described once (stepInputs) for both modes; the
// action types, each a whole unit (actionType) that says everything about
// itself; variables, templates and payload templates; the outputs set
// before a call leaves; one owner loop per call; the flow graph as a model
// (Graph); metrics.
//
// It must not read configuration files or the environment (cmd/eslapp
// decodes the TOML and hands over Config and FlowConfig); speak the Event
// Socket wire (esl does, behind Channel); send HTTP or decide a CRM outcome
// (crm does, behind Workflows); draw a graph (internal/flowgraph does); keep
// package-level loggers or mutable state. Nothing outside an action type's
// own file asks which type an action is.
package callflow
