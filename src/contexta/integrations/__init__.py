"""Adapters that meet users in the framework they train with (Lightning, Hugging Face, Keras), export to
OpenTelemetry, and sample system metrics.

Each adapter lives in its own module and imports its framework only when that module is imported, so
`import contexta` never pulls in a framework; install the matching extra (`contexta[lightning]`, ...).
"""
