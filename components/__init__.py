"""Custom TFX components: example ingestion, pair/triplet construction, retrieval evaluation."""
