"""DataValidator: checks each new span against the curated schema and the previous span."""
