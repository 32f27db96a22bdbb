"""The order of the stages: plan, fetch, base and runtime, assemble, verify, promote; cache care."""
