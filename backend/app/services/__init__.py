"""Use cases: compose repositories, the cache and the forecasting library."""
