"""Segmentation datasets (ovdense/datasets/segmentation.py): ADE20K-847 and
PASCAL-Context-459 keep their 16-bit labels (LoadUInt16SegAnnotations), and VocabSegDataset
takes its classes from a vocabulary."""
import os
import os.path as osp

import numpy as np
import pytest
from PIL import Image

import ovdense  # noqa: F401
from ovdense.datasets import (ADE20K847Dataset, LoadUInt16SegAnnotations,
                              PascalContext459Dataset, VocabSegDataset)


def _write_pair(root, split_img, split_ann, stem, labels, ext):
    os.makedirs(osp.join(root, split_img), exist_ok=True)
    os.makedirs(osp.join(root, split_ann), exist_ok=True)
    Image.fromarray(np.zeros(labels.shape + (3,), np.uint8)).save(
        osp.join(root, split_img, stem + '.jpg'))
    Image.fromarray(labels).save(osp.join(root, split_ann, stem + ext))


def test_ade20k_847_and_pascal_context_459_keep_16_bit_labels(tmp_path):
    labels = np.array([[0, 300, 846], [65535, 255, 12]], np.uint16)
    root = str(tmp_path / 'ADE20K_2021_17_01')
    _write_pair(root, 'images_detectron2/validation', 'annotations_detectron2/validation',
                'ADE_val_00000001', labels, '.tif')
    pipeline = [dict(type='LoadUInt16SegAnnotations')]
    from mmengine.registry import init_default_scope
    init_default_scope('mmseg')
    ade = ADE20K847Dataset(data_root=root, pipeline=pipeline, data_prefix=dict(
        img_path='images_detectron2/validation',
        seg_map_path='annotations_detectron2/validation'))
    assert len(ade.metainfo['classes']) == 847 and ade.metainfo['classes'][1] == \
        'building, edifice'
    gt = ade[0]['gt_seg_map']
    assert gt.dtype == np.uint16 and gt.tolist() == labels.tolist()  # 255 is a class here
    remapped = LoadUInt16SegAnnotations(ignore_index=1000)(dict(
        seg_map_path=ade.get_data_info(0)['seg_map_path'], reduce_zero_label=False,
        seg_fields=[]))['gt_seg_map']
    assert remapped[1, 0] == 1000 and remapped[0, 1] == 300
    pc_root = str(tmp_path / 'pcontext_full')
    _write_pair(pc_root, 'val/image', 'val/label', '2008_000002',
                np.array([[458, 65535]], np.uint16), '.tif')
    pc = PascalContext459Dataset(data_root=pc_root, pipeline=pipeline,
                                 data_prefix=dict(img_path='val/image', seg_map_path='val/label'))
    assert len(pc.metainfo['classes']) == 459 and pc[0]['gt_seg_map'].tolist() == [[458, 65535]]
    subset = PascalContext459Dataset(data_root=pc_root, pipeline=pipeline, data_prefix=dict(
        img_path='val/image', seg_map_path='val/label'), metainfo=dict(classes=('wool',)))
    assert subset[0]['gt_seg_map'].tolist() == [[0, 65535]]  # removed classes -> ignore


def test_vocab_seg_dataset_takes_classes_from_a_vocabulary(tmp_path):
    root = str(tmp_path / 'seg')
    _write_pair(root, 'img', 'ann', 'a', np.array([[0, 1]], np.uint8), '.png')
    vocab = tmp_path / 'v.txt'
    vocab.write_text('red circle\nblue star\n')
    ds = VocabSegDataset(vocabulary=str(vocab), data_root=root,
                         data_prefix=dict(img_path='img', seg_map_path='ann'), pipeline=[])
    assert ds.metainfo['classes'] == ('red circle', 'blue star') and len(ds) == 1
    with pytest.raises(ValueError, match='differ from vocabulary'):
        VocabSegDataset(vocabulary=str(vocab), data_root=root, metainfo=dict(classes=('x',)),
                        data_prefix=dict(img_path='img', seg_map_path='ann'), pipeline=[])
