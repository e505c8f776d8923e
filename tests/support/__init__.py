"""Test harness: a real moto S3 server process and a fault-injecting HTTP proxy."""
