//! Scenario files: YAML model, loading, validation with file:line:column errors.
