from .text_dino import ClassEmbeddingQueries, TextCdnQueryGenerator, TextDINO

__all__ = ['ClassEmbeddingQueries', 'TextCdnQueryGenerator', 'TextDINO']
