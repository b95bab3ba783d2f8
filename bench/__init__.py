"""actbench harness: catalog, domains, metrics, budgets, audit, result tables, CLI."""

__all__ = ["catalog", "domains", "metrics", "budgets", "audit", "table", "results", "cli"]
