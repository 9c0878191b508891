"""The API's typed inputs and outputs (one input and one output schema per endpoint)."""
