from .hooks import OpenVocabularyHook

__all__ = ['OpenVocabularyHook']
