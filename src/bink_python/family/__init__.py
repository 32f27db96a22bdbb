"""The family as images.toml describes it: tags, policy, versions, the CI matrix."""
