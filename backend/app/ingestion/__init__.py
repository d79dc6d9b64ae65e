"""Pure readers that turn bundled or downloaded market-data files into candles."""
