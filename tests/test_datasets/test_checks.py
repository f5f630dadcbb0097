"""Sample checks shared by ovdense's datasets (ovdense/datasets/checks.py): an annotation whose
category is not in its file is named (OV-LVIS, OV-COCO), and an image that cannot be read or
decoded is named by path (mmcv's ignore_empty convention kept), for detection and
segmentation."""
import json
import os
import os.path as osp

import pytest

import ovdense  # noqa: F401


def _lvis_file(path, categories, images, annotations):
    with open(path, 'w') as f:
        json.dump(dict(images=images, annotations=annotations, categories=categories), f)
    return str(path)


def _lvis_categories(names):
    return [dict(id=i + 1, name=n, synonyms=[n], synset=f'{n}.n.01', frequency='f',
                 image_count=1, instance_count=1, **{'def': f'a {n}'})
            for i, n in enumerate(names)]


def _lvis_image(image_id, file_name):
    return dict(id=image_id, width=32, height=32, neg_category_ids=[],
                not_exhaustive_category_ids=[],
                coco_url=f'http://images.cocodataset.org/train2017/{file_name}')


def _box(ann_id, image_id, category_id):
    return dict(id=ann_id, image_id=image_id, category_id=category_id, bbox=[2, 2, 10, 10],
                area=100, segmentation=[[2, 2, 12, 2, 12, 12, 2, 12]], iscrowd=0)


def test_lvis_annotation_with_unknown_category_is_named(tmp_path):
    from ovdense.datasets import OVLVISV1Dataset
    from ovdense.utils import OvdenseFileError
    ann = _lvis_file(tmp_path / 'lvis_bad.json', _lvis_categories(['cat', 'dog']),
                     [_lvis_image(1, 'a.jpg'), _lvis_image(2, 'b.jpg')],
                     [_box(10, 1, 1), _box(11, 2, 2), _box(12, 2, 7)])
    with pytest.raises(OvdenseFileError,
                       match=r"lvis_bad\.json'.*annotation 12 of image 2 has category_id 7, "
                             r"which is not among the file's 2 categories"):
        OVLVISV1Dataset(ann_file=ann, data_root=str(tmp_path), pipeline=[],
                        data_prefix=dict(img=''))


def test_coco_annotation_with_unknown_category_is_named(tmp_path):
    """OV-COCO: ids of COCO classes outside the 65 split classes are skipped on purpose; an
    id that is not a category of the file at all is an error."""
    from ovdense.datasets import OVCocoDataset, load_ov_coco_split
    from ovdense.utils import OvdenseFileError
    split = load_ov_coco_split()
    names = list(split['base'] + split['novel']) + ['unicorn']  # a category, not a class
    categories = [dict(id=i + 1, name=n, supercategory='x') for i, n in enumerate(names)]
    images = [dict(id=i, file_name=f'{i}.jpg', width=32, height=32) for i in (1, 2)]
    unicorn = len(names)
    path = tmp_path / 'coco_ok.json'
    with open(path, 'w') as f:
        json.dump(dict(images=images, categories=categories,
                       annotations=[_box(1, 1, 1), _box(2, 2, unicorn)]), f)
    dataset = OVCocoDataset(ann_file=str(path), data_root=str(tmp_path), pipeline=[],
                            data_prefix=dict(img=''), test_mode=True)
    assert sum(len(dataset.get_data_info(i)['instances']) for i in range(len(dataset))) == 1
    with open(path) as f:
        record = json.load(f)
    record['annotations'].append(_box(3, 2, 999))
    bad = tmp_path / 'coco_bad.json'
    with open(bad, 'w') as f:
        json.dump(record, f)
    with pytest.raises(OvdenseFileError, match=r"coco_bad\.json'.*annotation 3 of image 2 has "
                                               r'category_id 999'):
        OVCocoDataset(ann_file=str(bad), data_root=str(tmp_path), pipeline=[],
                      data_prefix=dict(img=''), test_mode=True)


def _write_images(directory, names):
    """A valid JPEG, an empty file and a file of text, under the given names."""
    import numpy as np
    from PIL import Image
    os.makedirs(directory, exist_ok=True)
    good, empty, garbage = (osp.join(directory, n) for n in names)
    Image.fromarray(np.full((32, 32, 3), 128, np.uint8)).save(good)
    open(empty, 'wb').close()
    with open(garbage, 'wb') as f:
        f.write(b'not an image at all' * 8)


def _error_text(err: BaseException) -> str:
    return '\n'.join([str(err), *getattr(err, '__notes__', [])])


@pytest.mark.parametrize('ignore_empty', [False, True])
def test_undecodable_detection_images_are_named(tmp_path, ignore_empty):
    """mmcv's convention is kept: loading fails (default), or with ``ignore_empty=True`` a
    file that cannot be read (here: the empty one) is skipped and the dataset draws another
    sample; a file that reads but decodes to nothing fails either way (mmcv 2.1). A failure
    names the file: mmcv does for an undecodable file; for an empty file OpenCV does not, and
    ovdense's datasets add the path as a note."""
    from mmengine.registry import init_default_scope

    from ovdense.datasets import OVLVISV1Dataset
    init_default_scope('mmdet')
    names = ['good.jpg', 'empty.jpg', 'garbage.jpg']
    _write_images(str(tmp_path / 'train2017'), names)
    if ignore_empty:  # a skipped sample is replaced by a random other one: make it the good
        names = names[:2]
    ann = _lvis_file(tmp_path / 'lvis.json', _lvis_categories(['cat']),
                     [_lvis_image(i + 1, n) for i, n in enumerate(names)],
                     [_box(i + 1, i + 1, 1) for i in range(len(names))])
    dataset = OVLVISV1Dataset(
        ann_file=ann, data_root=str(tmp_path), data_prefix=dict(img=''),
        pipeline=[dict(type='LoadImageFromFile', ignore_empty=ignore_empty),
                  dict(type='LoadAnnotations', with_bbox=True), dict(type='PackDetInputs')])
    order = [osp.basename(dataset.get_data_info(i)['img_path']) for i in range(len(names))]
    assert dataset[order.index('good.jpg')]['inputs'].shape == (3, 32, 32)
    for name in names[1:]:
        if ignore_empty:  # skipped: the good image comes back instead
            sample = dataset[order.index(name)]
            assert sample['data_samples'].img_path.endswith('good.jpg')
        else:
            with pytest.raises(Exception) as err:
                dataset[order.index(name)]
            assert str(tmp_path / 'train2017' / name) in _error_text(err.value), name


def test_undecodable_segmentation_image_is_named(tmp_path):
    import numpy as np
    from PIL import Image

    from mmengine.registry import init_default_scope

    from ovdense.datasets import VocabSegDataset
    init_default_scope('mmseg')
    names = ['a.jpg', 'b.jpg', 'c.jpg']
    _write_images(str(tmp_path / 'img'), names)
    os.makedirs(tmp_path / 'ann')
    for name in names:
        Image.fromarray(np.zeros((32, 32), np.uint8)).save(
            tmp_path / 'ann' / name.replace('.jpg', '.png'))
    dataset = VocabSegDataset(vocabulary='cat,dog', data_root=str(tmp_path),
                              data_prefix=dict(img_path='img', seg_map_path='ann'),
                              pipeline=[dict(type='LoadImageFromFile'),
                                        dict(type='LoadAnnotations'),
                                        dict(type='PackSegInputs')])
    order = [osp.basename(dataset.get_data_info(i)['img_path']) for i in range(3)]
    assert dataset[order.index('a.jpg')]['inputs'].shape == (3, 32, 32)
    for name in ('b.jpg', 'c.jpg'):
        with pytest.raises(Exception) as err:
            dataset[order.index(name)]
        assert str(tmp_path / 'img' / name) in _error_text(err.value), name
