"""Unit tests of the pure forecasting library (app.forecasting)."""
