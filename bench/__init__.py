"""actbench harness: catalog, domains, metrics, budgets, audit, result tables, CLI."""

__all__ = ["audit", "budgets", "catalog", "cli", "domains", "metrics", "results", "table"]
