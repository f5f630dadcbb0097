"""The text-generated cosine classifier, the class embeddings it scores against, and what
they are made of (vocabularies, prompts, text towers)."""
from .class_embeddings import (ClassEmbeddings, FileClassEmbeddings,
                               FrozenTowerClassEmbeddings, RandomClassEmbeddings,
                               TrainedTowerClassEmbeddings, random_class_embeddings)
from .classifier import TextCosineClassifier
from .embeddings import (EmbeddingCache, build_class_embeddings, load_classifier_file,
                         save_classifier_file, save_classifier_pair)
from .prompts import TEMPLATE_SETS, PromptStyle, load_templates
from .sharing import WithClassEmbeddings, shared_class_embeddings
from .towers import TextTower, load_tower_config
from .vocabulary import (ClassEntry, Vocabulary, VocabularyError, builtin_names,
                         load_vocabulary, novel_class_ids, vocabulary_from_lvis_categories)

__all__ = [
    'ClassEmbeddings', 'FileClassEmbeddings', 'FrozenTowerClassEmbeddings',
    'RandomClassEmbeddings', 'TrainedTowerClassEmbeddings', 'WithClassEmbeddings',
    'shared_class_embeddings', 'TextCosineClassifier', 'random_class_embeddings',
    'EmbeddingCache', 'build_class_embeddings', 'load_classifier_file', 'save_classifier_file',
    'save_classifier_pair', 'TEMPLATE_SETS', 'PromptStyle', 'load_templates', 'TextTower',
    'load_tower_config',
    'ClassEntry', 'Vocabulary', 'VocabularyError', 'builtin_names', 'load_vocabulary',
    'novel_class_ids', 'vocabulary_from_lvis_categories'
]
