"""The REST API: persists the pipeline's topics in a database and serves incidents, evidence and cameras."""
