from .modules import TEXT_SOURCES, DataSpec, SinCosData, TextClassificationData
from . import imdb, trec
from .text import TextSettings

__all__ = ["TEXT_SOURCES", "DataSpec", "SinCosData", "TextClassificationData", "TextSettings"]
