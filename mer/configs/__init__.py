"""The Hydra config tree of the commands (package data: found through the package, not the checkout)."""
