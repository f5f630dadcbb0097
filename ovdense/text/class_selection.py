"""Choosing some classes of a vocabulary (train on a subset, test on all), for the action
dataset, head, metric and check hook alike."""
from typing import List, Optional, Sequence, Tuple, Union

from .vocabulary import Vocabulary, VocabularyError, load_vocabulary

ClassSelection = Union[None, str, Sequence[Union[int, str]]]


def select_classes(vocabulary, classes: ClassSelection = None
                   ) -> Tuple[Vocabulary, Vocabulary, List[int]]:
    """``(full vocabulary, selected sub-vocabulary, label ids of the selection)``.

    ``classes``: None (all), a list of label ids (ints, indices into ``vocabulary``) and/or
    class names, or any vocabulary spec whose names are all in ``vocabulary`` (a comma list,
    a file). The selection keeps the order given: selected class ``i`` is new label ``i``.
    """
    vocab = load_vocabulary(vocabulary)
    if classes is None:
        return vocab, vocab, list(range(len(vocab)))
    if isinstance(classes, str):
        classes = list(load_vocabulary(classes).names)
    if not isinstance(classes, (list, tuple)):
        raise VocabularyError(f'classes must be None, a list of label ids / names or a '
                              f'vocabulary spec; got {type(classes).__name__}')
    if not classes:
        raise VocabularyError(f'classes of {vocab.source!r}: the selection is empty')
    index = {name: i for i, name in enumerate(vocab.names)}
    ids: List[int] = []
    for item in classes:
        if isinstance(item, int) and not isinstance(item, bool):
            if not 0 <= item < len(vocab):
                raise VocabularyError(f'classes: label id {item} is outside vocabulary '
                                      f'{vocab.source!r} (0..{len(vocab) - 1})')
            ids.append(item)
        elif isinstance(item, str):
            if item not in index:
                raise VocabularyError(f'classes: {item!r} is not a class of vocabulary '
                                      f'{vocab.source!r}')
            ids.append(index[item])
        else:
            raise VocabularyError(f'classes: {item!r} is neither a label id nor a class name')
    if len(set(ids)) != len(ids):
        seen, repeated = set(), []
        for i in ids:
            if i in seen:
                repeated.append(vocab.names[i])
            seen.add(i)
        raise VocabularyError(f'classes of {vocab.source!r} repeat {repeated[:5]}')
    return vocab, vocab.subset([vocab.names[i] for i in ids]), ids


def resolve_names(vocabulary, classes: ClassSelection) -> Optional[Tuple[str, ...]]:
    """The class names of a selection (None when ``classes`` is None)."""
    if classes is None:
        return None
    return select_classes(vocabulary, classes)[1].names
