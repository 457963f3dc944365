package callflow

// StepInput is one row of stepInputs, for the external tests: its flow
// key, its channel variable ("" none) and how it is written (text, millis,
// flag or table).
type StepInput struct{ Key, Var, Kind string }

// StepInputs lists stepInputs.
func StepInputs() []StepInput {
	out := make([]StepInput, len(stepInputs))
	for i, in := range stepInputs {
		out[i] = StepInput{Key: in.key, Var: in.wfe, Kind: in.kind()}
	}
	return out
}

// kind names the one rule the input has ("" when it has none, or several).
func (in stepInput) kind() string {
	kinds := map[string]bool{"text": in.text != nil, "millis": in.millis != nil, "flag": in.flag != nil, "table": in.table != nil}
	found := ""
	for k, has := range kinds {
		if has && found != "" {
			return ""
		}
		if has {
			found = k
		}
	}
	return found
}
