"""One candle pipeline: every source's rows, read into raw rows, pass one validator.

Sources: uploads and CLI files (:mod:`.json_rows`, :mod:`.csv_formats`), the bundled demo data
(:mod:`.demo_data`) and CoinGecko (:mod:`.coingecko`); :func:`.batch.validate_batch` turns
their rows into candles, reading each field by :mod:`.fields`.
"""
