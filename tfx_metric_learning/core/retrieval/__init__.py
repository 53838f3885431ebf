"""Retrieval metrics and exact cosine k-NN search, shared by the Trainer and the evaluator."""
