"""Crypto prediction backend: market data, forecasts and their scores behind one API."""

__version__ = "1.0.0"
