"""Partner Center for selling software through a reseller channel."""

__version__ = "0.1.0"
