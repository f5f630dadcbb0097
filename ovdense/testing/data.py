"""Small data files written on the spot: a COCO annotation file of four images, random
videos, video list files, and the OpenCV video pipeline that reads them."""
import json
import os.path as osp
from typing import Iterable, List

# boxes (x, y, w, h) of the small COCO file's images 1 to 3 (image 4 has none)
SMALL_COCO_BOXES = {1: [[2, 2, 10, 10], [20, 20, 10, 12]], 2: [[4, 4, 20, 16]],
                    3: [[6, 6, 12, 12]]}


def write_small_coco(directory, skip_class=None) -> str:
    """``instances_small.json`` in ``directory``: the 80 COCO categories (less
    ``skip_class``) and 4 images. 1: person + dog (novel). 2: airplane only (novel).
    3: car + traffic light (one of the 15 classes outside OV-COCO). 4: no annotations."""
    from mmdet.datasets import CocoDataset
    coco_classes = CocoDataset.METAINFO['classes']
    box = SMALL_COCO_BOXES
    categories = [dict(id=i + 1, name=n, supercategory='x') for i, n in enumerate(coco_classes)
                  if n != skip_class]
    images = [dict(id=i, file_name=f'{i:012d}.jpg', width=64, height=48) for i in (1, 2, 3, 4)]
    labelled = [(1, 'person', box[1][0]), (1, 'dog', box[1][1]), (2, 'airplane', box[2][0]),
                (3, 'car', box[3][0]), (3, 'traffic light', [30, 30, 8, 8])]
    annotations = [dict(id=k + 1, image_id=img, category_id=coco_classes.index(name) + 1,
                        bbox=bbox, area=bbox[2] * bbox[3], iscrowd=0)
                   for k, (img, name, bbox) in enumerate(labelled)]
    path = osp.join(str(directory), 'instances_small.json')
    with open(path, 'w') as f:
        f.write(json.dumps(dict(images=images, annotations=annotations,
                                categories=categories)))
    return path


def write_list(path, lines: Iterable[str]) -> str:
    """A text file of ``lines`` (a video list: ``<file> <label>`` per line)."""
    with open(path, 'w') as f:
        f.write(''.join(f'{line}\n' for line in lines))
    return str(path)


def write_random_video(path, frames: int = 16, size: int = 32, seed: int = 0) -> str:
    """An mp4 video of ``frames`` random ``size`` x ``size`` frames (OpenCV)."""
    import cv2
    import numpy as np
    rng = np.random.default_rng(seed)
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*'mp4v'), 8, (size, size))
    assert writer.isOpened()
    for _ in range(frames):
        writer.write(rng.integers(0, 256, (size, size, 3), dtype=np.uint8))
    writer.release()
    return str(path)


def opencv_pipeline(checked: bool = True) -> List[dict]:
    """Init, sample one 4-frame clip, decode: ovdense's checked OpenCV transforms or
    mmaction's stock ones."""
    prefix = 'Checked' if checked else ''
    return [dict(type=f'{prefix}OpenCVInit'),
            dict(type='SampleFrames', clip_len=4, frame_interval=2, num_clips=1,
                 test_mode=True),
            dict(type=f'{prefix}OpenCVDecode')]
