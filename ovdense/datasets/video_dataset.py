"""mmaction2's ``VideoDataset`` (list file of ``path label`` lines) whose classes are a
vocabulary, optionally restricted to some classes, optionally without the clips of the novel
classes while training (open-vocabulary training, as ``OVLVISV1Dataset(novel_classes=...)``)."""
from typing import List, Optional, Sequence, Union

from mmaction.datasets import VideoDataset
from mmengine.logging import print_log

from ..registry import register
from ..text.vocabulary import NovelSelection, novel_class_ids, select_classes
from ..utils.cli import ConfigError
from ..utils.io import OvdenseFileError
from .transforms.video import UnreadableVideoError

UNREADABLE_POLICIES = ('raise', 'skip')


@register('DATASETS', scopes=('mmaction',))
class VocabVideoDataset(VideoDataset):
    """A ``VideoDataset`` with ``metainfo['classes']`` = the vocabulary's names.

    Args:
        vocabulary: the class list the file's labels index, in label order
            (``'kinetics_400'``, a ``.json``/``.txt`` vocabulary file, ...).
        classes: None (every clip), or label ids / names of ``vocabulary``: only clips of these
            classes are kept and relabelled ``0..len(classes)-1`` in the order given (the
            model's vocabulary must then be the same selection).
        novel_classes: None, or the classes (names and/or label ids of the dataset's classes,
            as the class-embedding component's ``novel_classes``) whose clips are dropped
            unless ``test_mode``: training never sees them; labels keep indexing every class.
        on_unreadable: ``'raise'`` (default): a video that cannot be read stops the run with an
            error naming the file. ``'skip'``: while training, the clip is skipped with a
            warning naming it and mmengine draws another one (its convention for samples a
            pipeline cannot produce); validation / test always raise: a metric over a
            silently smaller set would be wrong.
        Other arguments are those of ``VideoDataset`` (``ann_file``, ``pipeline``,
        ``data_prefix``, ``test_mode``, ...). ``multi_class`` is not supported.
    """

    def __init__(self, ann_file: str, pipeline: List, vocabulary,
                 classes: Optional[Union[str, Sequence]] = None,
                 novel_classes: NovelSelection = None, on_unreadable: str = 'raise',
                 metainfo: Optional[dict] = None, **kwargs):
        if on_unreadable not in UNREADABLE_POLICIES:
            raise ConfigError(f'on_unreadable must be one of {UNREADABLE_POLICIES}, '
                              f'got {on_unreadable!r}')
        if kwargs.get('multi_class'):
            raise ConfigError('VocabVideoDataset: multi_class lists are not supported')
        self.vocabulary, self.selection, ids = select_classes(vocabulary, classes)
        self._new_label = {old: new for new, old in enumerate(ids)}
        self._novel_labels = set(novel_class_ids(self.selection, novel_classes))
        self.on_unreadable = on_unreadable
        self._skipped = set()
        metainfo = dict(metainfo or {})
        names = self.selection.names
        if metainfo.get('classes') is not None and tuple(metainfo['classes']) != names:
            raise ConfigError(
                'VocabVideoDataset: metainfo classes differ from the vocabulary selection; '
                'drop metainfo.classes (they come from vocabulary / classes)')
        metainfo['classes'] = names
        super().__init__(ann_file, pipeline, metainfo=metainfo, **kwargs)

    def load_data_list(self) -> List[dict]:
        data_list = super().load_data_list()
        kept = []
        count = len(self.vocabulary)
        for line, info in enumerate(data_list, start=1):
            label = info['label']
            if label == -1 and self.selection is self.vocabulary:
                kept.append(info)  # an unlabelled line (inference lists)
                continue
            if not 0 <= label < count:
                raise OvdenseFileError(
                    f'{self.ann_file!r} line {line} ({info["filename"]!r}): label {label} is '
                    f'not a class id of vocabulary {self.vocabulary.source!r} '
                    f'(0..{count - 1})')
            label = self._new_label.get(label)
            if label is None or (label in self._novel_labels and not self.test_mode):
                continue
            kept.append(dict(info, label=label))
        if self.test_mode or not self._novel_labels:
            wanted = f'{len(self.selection)} selected classes'
        else:
            wanted = f'{len(self.selection) - len(self._novel_labels)} trained (non-novel) classes'
        if not kept:
            raise OvdenseFileError(f'{self.ann_file!r} has no clip of the {wanted}')
        if len(kept) < len(data_list):
            print_log(f'{self.ann_file}: {len(kept)} of {len(data_list)} clips belong to the '
                      f'{wanted}', logger='current')
        return kept

    def prepare_data(self, idx: int):
        try:
            return super().prepare_data(idx)
        except UnreadableVideoError as err:
            if self.test_mode or self.on_unreadable == 'raise':
                raise
            filename = self.get_data_info(idx).get('filename')
            if filename not in self._skipped:
                self._skipped.add(filename)
                print_log(f'skipping an unreadable training video (another clip is drawn '
                          f'instead): {err}', logger='current', level=30)
            return None  # mmengine's BaseDataset draws another index
