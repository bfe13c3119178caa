"""Reports: queries, rollups and ad spend."""
