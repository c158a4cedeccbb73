"""Ingest: pull frames from cameras, sample, encode, hash and publish them to Kafka."""
