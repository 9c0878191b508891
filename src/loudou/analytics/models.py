"""Analytics has no tables of its own: it reads opportunity history (DESIGN.md rule 3)."""
