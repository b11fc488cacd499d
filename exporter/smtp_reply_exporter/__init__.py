"""Prometheus exporter of the SMTP reply codes that mail servers send and receive."""

__version__ = "0.1.0"
