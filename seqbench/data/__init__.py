from .modules import GENERATED, TASKS, TEXT_SOURCES, DataSpec, GeneratedData, TextClassificationData, text_file_source
from . import imdb, trec
from .text import TextSettings

__all__ = ["GENERATED", "TASKS", "TEXT_SOURCES", "DataSpec", "GeneratedData", "TextClassificationData",
           "text_file_source", "TextSettings"]
