"""VocabVideoDataset (ovdense/datasets/video_dataset.py): classes selected from a vocabulary
and relabelled, novel classes' clips dropped while training only, and unreadable videos that
stop tests and are skipped in training only if asked (skipped without the "action" extra)."""
import os.path as osp

import pytest

import ovdense  # noqa: F401
from ovdense.testing.optional import require_mmaction

require_mmaction(module_level=True)  # absent: skipped; installed but broken: fails

from ovdense.datasets import UnreadableVideoError, VocabVideoDataset  # noqa: E402
from ovdense.testing.data import opencv_pipeline, write_list, write_random_video  # noqa: E402
from ovdense.text import VocabularyError  # noqa: E402
from ovdense.utils.cli import ConfigError  # noqa: E402
from ovdense.utils.io import OvdenseFileError  # noqa: E402


VOCAB4 = 'running,jumping,swimming,dancing'


def test_vocab_video_dataset_selects_and_relabels_classes(tmp_path):
    ann = write_list(tmp_path / 'list.txt', ['a.mp4 0', 'b.mp4 1', 'c.mp4 2', 'd.mp4 3'])
    full = VocabVideoDataset(ann_file=ann, pipeline=[], vocabulary=VOCAB4,
                             data_prefix=dict(video=str(tmp_path)))
    assert full.metainfo['classes'] == tuple(VOCAB4.split(',')) and len(full) == 4
    part = VocabVideoDataset(ann_file=ann, pipeline=[], vocabulary=VOCAB4,
                             classes=['dancing', 1], data_prefix=dict(video=str(tmp_path)))
    assert part.metainfo['classes'] == ('dancing', 'jumping')
    infos = [part.get_data_info(i) for i in range(len(part))]
    assert [(osp.basename(i['filename']), i['label']) for i in infos] == [
        ('b.mp4', 1), ('d.mp4', 0)]
    bad = write_list(tmp_path / 'bad.txt', ['a.mp4 0', 'b.mp4 7'])
    with pytest.raises(OvdenseFileError,
                       match=r"bad.txt' line 2 \('.*b.mp4'\): label 7 is not a class id"):
        VocabVideoDataset(ann_file=bad, pipeline=[], vocabulary=VOCAB4)
    with pytest.raises(ConfigError, match='on_unreadable'):
        VocabVideoDataset(ann_file=ann, pipeline=[], vocabulary=VOCAB4, on_unreadable='ignore')
    for classes, message in (([9], r'classes: label id 9 is outside .*\(0..3\)'),
                             (['flying', 0], r"classes: \['flying'\] are neither label ids"),
                             ([0, 'running'], r"repeat \['running'\]"),
                             ([], 'the selection is empty')):
        with pytest.raises(VocabularyError, match=message):
            VocabVideoDataset(ann_file=ann, pipeline=[], vocabulary=VOCAB4, classes=classes)


def test_vocab_video_dataset_drops_novel_clips_while_training_only(tmp_path):
    ann = write_list(tmp_path / 'list.txt', ['a.mp4 0', 'b.mp4 1', 'c.mp4 2', 'd.mp4 3'])
    args = dict(ann_file=ann, pipeline=[], vocabulary=VOCAB4, novel_classes=[1, 'dancing'],
                data_prefix=dict(video=str(tmp_path)))
    train, test = VocabVideoDataset(**args), VocabVideoDataset(**args, test_mode=True)
    assert train.metainfo['classes'] == test.metainfo['classes'] == tuple(VOCAB4.split(','))
    labels = [[d.get_data_info(i)['label'] for i in range(len(d))] for d in (train, test)]
    assert labels == [[0, 2], [0, 1, 2, 3]]  # labels index the whole vocabulary
    with pytest.raises(VocabularyError, match=r'novel_classes: label id 4 is outside .*\(0..3\)'):
        VocabVideoDataset(**dict(args, novel_classes=[4]))
    only_novel = write_list(tmp_path / 'novel.txt', ['b.mp4 1'])
    with pytest.raises(OvdenseFileError, match='no clip of the 2 trained'):
        VocabVideoDataset(**dict(args, ann_file=only_novel))


def test_unreadable_video_stops_tests_and_is_skipped_in_training_only_if_asked(tmp_path):
    write_random_video(tmp_path / 'good.mp4')
    (tmp_path / 'broken.mp4').write_bytes(b'\x00' * 64)
    ann = write_list(tmp_path / 'list.txt', ['broken.mp4 1', 'good.mp4 0'])
    common = dict(ann_file=ann, vocabulary=VOCAB4, data_prefix=dict(video=str(tmp_path)),
                  pipeline=opencv_pipeline())
    from mmengine.registry import init_default_scope
    init_default_scope('mmaction')
    for kwargs in (dict(test_mode=True, on_unreadable='skip'), dict(test_mode=False)):
        dataset = VocabVideoDataset(**common, **kwargs)
        with pytest.raises(UnreadableVideoError, match='broken.mp4'):
            dataset[0]
    dataset = VocabVideoDataset(**common, on_unreadable='skip')
    sample = dataset[0]  # mmengine draws another index: the good clip
    assert osp.basename(sample['filename']) == 'good.mp4' and len(sample['imgs']) == 4
    assert dataset._skipped == {str(tmp_path / 'broken.mp4')}
