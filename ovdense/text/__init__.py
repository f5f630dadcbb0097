"""The text-generated cosine classifier and everything it is made of."""
from .classifier import TextCosineClassifier, random_class_embeddings
from .embeddings import (EmbeddingCache, build_class_embeddings, load_classifier_file,
                         save_classifier_file)
from .prompts import TEMPLATE_SETS, PromptStyle, load_templates
from .towers import TextTower, load_tower_config
from .vocabulary import (ClassEntry, Vocabulary, VocabularyError, builtin_names,
                         load_vocabulary, novel_class_ids, vocabulary_from_lvis_categories)

__all__ = [
    'TextCosineClassifier', 'random_class_embeddings', 'EmbeddingCache',
    'build_class_embeddings', 'load_classifier_file', 'save_classifier_file', 'TEMPLATE_SETS',
    'PromptStyle', 'load_templates', 'TextTower', 'load_tower_config', 'ClassEntry',
    'Vocabulary', 'VocabularyError', 'builtin_names', 'load_vocabulary', 'novel_class_ids',
    'vocabulary_from_lvis_categories'
]
