"""ORM models; importing this package registers every table on ``Base.metadata``."""

from app.models.api_key import ApiKey
from app.models.backtest import Backtest
from app.models.base import Base
from app.models.cryptocurrency import Cryptocurrency
from app.models.market_data import MarketData
from app.models.prediction import Prediction

__all__ = ["ApiKey", "Backtest", "Base", "Cryptocurrency", "MarketData", "Prediction"]
