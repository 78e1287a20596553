from .modules import TEXT_SOURCES, DataSpec, SinCosData, TextClassificationData, text_file_source
from . import imdb, trec
from .text import TextSettings

__all__ = ["TEXT_SOURCES", "DataSpec", "SinCosData", "TextClassificationData", "text_file_source", "TextSettings"]
