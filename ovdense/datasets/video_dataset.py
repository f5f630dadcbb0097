"""mmaction2's ``VideoDataset`` (list file of ``path label`` lines) whose classes are a
vocabulary, optionally restricted to some classes (open-vocabulary training on a subset)."""
from typing import List, Optional, Sequence, Union

from mmaction.datasets import VideoDataset
from mmengine.logging import print_log

from ..registry import register
from ..text.class_selection import select_classes
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
            classes are kept and relabelled ``0..len(classes)-1`` in the order given (train on
            a subset; the head's ``train_classes`` must be the same selection).
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
                 on_unreadable: str = 'raise', metainfo: Optional[dict] = None, **kwargs):
        if on_unreadable not in UNREADABLE_POLICIES:
            raise ConfigError(f'on_unreadable must be one of {UNREADABLE_POLICIES}, '
                              f'got {on_unreadable!r}')
        if kwargs.get('multi_class'):
            raise ConfigError('VocabVideoDataset: multi_class lists are not supported')
        self.vocabulary, self.selection, ids = select_classes(vocabulary, classes)
        self._new_label = {old: new for new, old in enumerate(ids)}
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
            if label in self._new_label:
                kept.append(dict(info, label=self._new_label[label]))
        if not kept:
            raise OvdenseFileError(f'{self.ann_file!r} has no clip of the selected '
                                   f'{len(self.selection)} classes')
        if len(kept) < len(data_list):
            print_log(f'{self.ann_file}: {len(kept)} of {len(data_list)} clips belong to the '
                      f'{len(self.selection)} selected classes', logger='current')
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
